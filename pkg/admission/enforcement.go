package admission

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// Action is what a failed check does to the admission request.
type Action string

// The enforcement actions.
const (
	// Deny rejects the request with the problem in the denial message.
	Deny Action = "deny"
	// Warn admits the request and returns the problem as a warning (kubectl prints it).
	Warn Action = "warn"
	// Off ignores the problem (it is still counted in the metrics with outcome "off").
	Off Action = "off"
)

// ParseAction parses "deny", "warn" or "off".
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case Deny, Warn, Off:
		return a, nil
	}
	return "", fmt.Errorf("enforcement action %q: must be deny, warn or off", s)
}

// Check names a group of rules that share one enforcement action.
type Check string

// The checks. Their default actions are in docs/webhook.md, "Checks and enforcement".
const (
	// CheckSpec: the Upstream's EC2 spec rules (pkg/ec2, EC2G0xx-2xx).
	CheckSpec Check = "spec"
	// CheckSecret: the referenced Secret exists, is readable and holds well-formed credentials
	// (pkg/ec2, EC2G3xx; EC2G403, EC2G404).
	CheckSecret Check = "secret"
	// CheckSecretAccess: a cross-namespace secretRef needs the requesting user to be allowed to
	// `get` that Secret (EC2G401, EC2G402).
	CheckSecretAccess Check = "secret-access"
	// CheckCredentials: AWS accepts the access key and roleArn can be assumed (EC2G504, EC2G505).
	CheckCredentials = Check(verdict.CheckCredentials)
	// CheckIAMDeny: ec2:DescribeInstances is denied, explicitly or implicitly (EC2G501, EC2G502).
	CheckIAMDeny = Check(verdict.CheckIAMDeny)
	// CheckIAMUnknown: the IAM decision could not be made within the deadline (EC2G503, EC2G506).
	CheckIAMUnknown = Check(verdict.CheckIAMUnknown)
	// CheckPermissiveNoFilters: the consistency class permissive-credentials-no-filters (EC2G601).
	CheckPermissiveNoFilters = Check(verdict.CheckPermissiveNoFilters)
)

// Checks returns every check, in the order the validating handler runs them.
func Checks() []Check {
	return []Check{CheckSpec, CheckSecret, CheckSecretAccess, CheckCredentials, CheckIAMDeny, CheckIAMUnknown, CheckPermissiveNoFilters}
}

// defaultActions are the defaults (docs/webhook.md, "Checks and enforcement").
func defaultActions() map[Check]Action {
	return map[Check]Action{
		CheckSpec:                Deny,
		CheckSecret:              Deny,
		CheckSecretAccess:        Deny,
		CheckCredentials:         Deny,
		CheckIAMDeny:             Deny,
		CheckIAMUnknown:          Warn,
		CheckPermissiveNoFilters: Warn,
	}
}

// DefaultAction returns the default action of c (Deny for an unknown check: fail closed).
func DefaultAction(c Check) Action {
	if a, ok := defaultActions()[c]; ok {
		return a
	}
	return Deny
}

// Enforcement maps each check to its action. The zero value uses the defaults.
type Enforcement struct {
	actions map[Check]Action
}

// DefaultEnforcement returns the default actions.
func DefaultEnforcement() Enforcement { return Enforcement{actions: defaultActions()} }

// Action returns the action of check c.
func (e Enforcement) Action(c Check) Action {
	if a, ok := e.actions[c]; ok {
		return a
	}
	return DefaultAction(c)
}

// With returns a copy of e with check c set to a. It fails for an unknown check.
func (e Enforcement) With(c Check, a Action) (Enforcement, error) {
	if !knownCheck(c) {
		return e, fmt.Errorf("unknown check %q (known: %s)", c, checkList())
	}
	if _, err := ParseAction(string(a)); err != nil {
		return e, fmt.Errorf("check %s: %w", c, err)
	}
	out := Enforcement{actions: defaultActions()}
	for k, v := range e.actions {
		out.actions[k] = v
	}
	out.actions[c] = a
	return out, nil
}

// String renders every check's action, e.g. "iam-deny=deny,iam-unknown=warn,...", sorted by check.
func (e Enforcement) String() string {
	parts := make([]string, 0, len(Checks()))
	for _, c := range Checks() {
		parts = append(parts, string(c)+"="+string(e.Action(c)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func knownCheck(c Check) bool {
	for _, k := range Checks() {
		if k == c {
			return true
		}
	}
	return false
}

func checkList() string {
	names := make([]string, 0, len(Checks()))
	for _, c := range Checks() {
		names = append(names, string(c))
	}
	return strings.Join(names, ", ")
}
