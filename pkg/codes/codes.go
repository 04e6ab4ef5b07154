// Package codes declares every problem ec2guard reports to a user: its code (EC2Gxxx), default
// severity, the webhook check it belongs to (and that check's default enforcement action), the field
// it is reported on, what the rule checks, the message template and the fix. The webhook, the
// discoverer, the reports and the CLI render their texts from here; docs/codes.md is generated from
// it (go generate ./pkg/codes). It imports nothing of ec2guard's, so every package can use it.
package codes

//go:generate go run ./gendoc ../../docs/codes.md

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Code is a stable identifier of one rule. It starts every message the rule produces, so a user can
// search for it. Codes are never reused for another rule.
type Code string

// Severity says whether a problem rejects the Upstream (SeverityError, under its check's default
// enforcement) or is only reported (SeverityWarning).
type Severity string

// The severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Bounds on one check's findings (EC2G007): at most MaxReportedErrors errors and
// MaxReportedWarnings warnings are reported, each text cut to MaxFindingMessageLength bytes.
const (
	MaxReportedErrors       = 20
	MaxReportedWarnings     = 10
	MaxFindingMessageLength = 512
)

// Rule documents one code and holds the templates its texts are rendered from.
type Rule struct {
	Code     Code
	Severity Severity // the default severity
	// Check is the webhook check (enforcement group) the code belongs to; "" for the discoverer's
	// codes, which no webhook check enforces.
	Check Check
	// Field is where the problem is reported, relative to the awsEc2 block unless it starts with
	// metadata or secret.
	Field string
	// Rule says what the rule checks (documentation).
	Rule string
	// Message and Fix are fmt templates rendered by Code.Message and Code.Fix with the same
	// arguments, named by Args in order (a template that does not use every argument refers to the
	// ones it uses by index, %[n]v).
	Message string
	Fix     string
	Args    []string
}

// the codes, by group. Names are the rule's, without a prefix: codes.RegionRequired.
const (
	// Decoding and shape (EC2G0xx).
	WrongType             Code = "EC2G001"
	BothShapesDiffer      Code = "EC2G002"
	BothShapesSame        Code = "EC2G003"
	UnknownField          Code = "EC2G004"
	FieldSpeltTwiceDiffer Code = "EC2G005"
	FieldSpeltTwiceSame   Code = "EC2G006"
	MoreFindings          Code = "EC2G007"
	CheckInterrupted      Code = "EC2G008"

	// Filters (EC2G1xx).
	FilterKeyOrKVPair      Code = "EC2G101"
	FilterKeyEmpty         Code = "EC2G102"
	FilterKeyTooLong       Code = "EC2G103"
	FilterValueTooLong     Code = "EC2G104"
	TooManyFilters         Code = "EC2G105"
	FilterConflict         Code = "EC2G106"
	FilterDuplicate        Code = "EC2G107"
	FilterRedundantKey     Code = "EC2G108"
	FilterEmptyValue       Code = "EC2G109"
	FilterKeyCaseCollision Code = "EC2G110"
	FilterWhitespace       Code = "EC2G111"
	NoFilters              Code = "EC2G112"
	FilterKeyWildcard      Code = "EC2G113"

	// Region, roleArn, port, secretRef and annotations (EC2G2xx).
	RegionRequired              Code = "EC2G201"
	RegionInvalid               Code = "EC2G202"
	RegionUnknown               Code = "EC2G203"
	RoleARNInvalid              Code = "EC2G204"
	RoleARNNotRole              Code = "EC2G205"
	RoleARNPartition            Code = "EC2G206"
	PortRange                   Code = "EC2G207"
	PortZero                    Code = "EC2G208"
	SecretRefNameRequired       Code = "EC2G209"
	SecretRefNamespaceDefaulted Code = "EC2G210"
	SecretRefInvalidName        Code = "EC2G211"
	PortTagInvalid              Code = "EC2G212"

	// The Secret's content (EC2G3xx).
	SecretNotFound         Code = "EC2G301"
	SecretKeyMissing       Code = "EC2G302"
	SecretKeyEmpty         Code = "EC2G303"
	AccessKeyIDShape       Code = "EC2G304"
	SecretWhitespace       Code = "EC2G305"
	SessionTokenMissing    Code = "EC2G306"
	SessionTokenUnexpected Code = "EC2G307"
	SecretKeysSwapped      Code = "EC2G308"
	SecretAccessKeyLength  Code = "EC2G309"
	SecretNotText          Code = "EC2G310"

	// The webhook's access gate and Secret reading (EC2G4xx).
	SecretAccessDenied     Code = "EC2G401"
	SecretAccessUnverified Code = "EC2G402"
	SecretNotWatched       Code = "EC2G403"
	SecretUnreadable       Code = "EC2G404"
	PodIdentityNotAllowed  Code = "EC2G405"
	SecretNotShared        Code = "EC2G406"

	// The IAM verdict (EC2G5xx) and the consistency class (EC2G6xx).
	IAMImplicitDeny     Code = "EC2G501"
	IAMExplicitDeny     Code = "EC2G502"
	IAMUnknown          Code = "EC2G503"
	AssumeRoleDenied    Code = "EC2G504"
	InvalidAccessKey    Code = "EC2G505"
	IAMSourcesDisagree  Code = "EC2G506"
	PermissiveNoFilters Code = "EC2G601"

	// The discoverer's refusals and failures (EC2G7xx).
	DiscoverySecretNotShared       Code = "EC2G701"
	DiscoveryPodIdentityNotAllowed Code = "EC2G702"
	PublishFailed                  Code = "EC2G703"
	GeneratedNamespaceRefused      Code = "EC2G704"
	GeneratedCapReached            Code = "EC2G705"
)

// index maps each code to its rule; built once, on first use, and only read after that (every
// finding looks its code up).
var index = sync.OnceValue(func() map[Code]Rule {
	t := table()
	m := make(map[Code]Rule, len(t))
	for _, r := range t {
		m[r.Code] = r
	}
	return m
})

// Rules returns every rule, sorted by code.
func Rules() []Rule {
	t := table()
	sort.Slice(t, func(i, j int) bool { return t[i].Code < t[j].Code })
	return t
}

// Lookup returns the rule of c.
func Lookup(c Code) (Rule, bool) {
	r, ok := index()[c]
	return r, ok
}

// Rule returns the rule of c (the zero Rule, with severity error, for an undeclared code).
func (c Code) Rule() Rule {
	if r, ok := Lookup(c); ok {
		return r
	}
	return Rule{Code: c, Severity: SeverityError}
}

// Severity is c's default severity (error for an undeclared code: fail closed).
func (c Code) Severity() Severity { return c.Rule().Severity }

// Check is the webhook check c belongs to.
func (c Code) Check() Check { return c.Rule().Check }

// Message renders c's message template with args (in the order the rule's Args names them).
func (c Code) Message(args ...any) string { return render(c.Rule().Message, args) }

// Fix renders c's fix template with the same args as Message.
func (c Code) Fix(args ...any) string { return render(c.Rule().Fix, args) }

// String is the code itself.
func (c Code) String() string { return string(c) }

// render formats a template; a template without verbs is returned as it is (its rule's other
// template may use the arguments).
func render(tmpl string, args []any) string {
	if !strings.Contains(tmpl, "%") {
		return tmpl
	}
	return fmt.Sprintf(tmpl, args...)
}
