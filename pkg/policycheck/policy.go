// Package policycheck is ec2guard's IAM policy engine: a policy model and parser, the evaluation of
// AWS's authorization logic (written in Rego and run by OPA), explanations and lints, and the
// consistency classification of EC2 Upstreams. The webhook, the discoverer and the CLI all decide
// through this package, so they always agree.
//
// The layering is strict: Go parses policies and prepares a normalized input; the decision itself
// (which statements apply, how policy types combine) is made by the embedded Rego in rego/.
package policycheck

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// Policy language versions recognized by IAM.
const (
	// Version20121017 is the current policy language; policy variables work only under it.
	Version20121017 = "2012-10-17"
	// Version20081017 is the legacy policy language (also the default when Version is absent):
	// `${...}` is literal text under it.
	Version20081017 = "2008-10-17"
)

// Effect is the Effect element of a statement.
type Effect string

// The two effects a statement can have.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed IAM policy document.
type Policy struct {
	// Version as written; empty when the document has none (which IAM treats as 2008-10-17).
	Version string
	// ID is the optional Id element.
	ID string
	// Statements in document order.
	Statements []Statement
	// StatementIsList records whether Statement was a JSON list (for faithful re-rendering).
	StatementIsList bool

	// digest is the SHA-256 of the document as parsed (set by ParsePolicy).
	digest    [32]byte
	hasDigest bool
}

// Digest identifies the policy's content: the SHA-256 of the JSON it was parsed from, or of its
// canonical JSON encoding for a policy built otherwise.
func (p *Policy) Digest() [32]byte {
	if p.hasDigest {
		return p.digest
	}
	b, err := json.Marshal(p)
	if err != nil {
		return sha256.Sum256([]byte(fmt.Sprintf("%#v", p)))
	}
	return sha256.Sum256(b)
}

// VariablesEnabled reports whether the policy language version supports policy variables.
func (p *Policy) VariablesEnabled() bool { return p.Version == Version20121017 }

// Statement is one statement of a policy. Exactly one of Action/NotAction is set; at most one of
// Resource/NotResource and of Principal/NotPrincipal.
type Statement struct {
	Sid    string
	Effect Effect

	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// HasResource/HasNotResource distinguish an absent element from an empty list.
	HasResource    bool
	HasNotResource bool

	Principal    *Principal
	NotPrincipal *Principal

	Conditions []Condition
}

// Principal is a Principal or NotPrincipal element. `"*"` sets Any.
type Principal struct {
	Any           bool
	AWS           []string
	Service       []string
	Federated     []string
	CanonicalUser []string
}

// SetOperator is the ForAnyValue:/ForAllValues: qualifier of a condition operator.
type SetOperator string

// Set operators.
const (
	SetNone         SetOperator = ""
	SetForAnyValue  SetOperator = "ForAnyValue"
	SetForAllValues SetOperator = "ForAllValues"
)

// Condition is one (operator, key) pair of a Condition block with its values. A block with several
// operators or keys becomes several Conditions (they are ANDed).
type Condition struct {
	// Operator as written in the policy, e.g. "ForAnyValue:StringLikeIfExists".
	Operator string
	// Base is the canonical base operator, e.g. "StringLike".
	Base string
	// Set is the set-operator qualifier, if any.
	Set SetOperator
	// IfExists is true for the ...IfExists form.
	IfExists bool
	// Key is the condition key as written (keys are case-insensitive).
	Key string
	// Values as strings (JSON booleans and numbers are turned into their text, as AWS does).
	Values []string
}

// baseOperators are the condition operators IAM knows, in canonical spelling.
var baseOperators = []string{
	"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
	"StringLike", "StringNotLike",
	"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
	"NumericGreaterThan", "NumericGreaterThanEquals",
	"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
	"DateGreaterThanEquals",
	"Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
	"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
	"Null",
}
