package admission

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// Action is what a failed check does to the admission request (declared in pkg/codes, with each
// check's default).
type Action = codes.Action

// The enforcement actions.
const (
	Deny = codes.Deny
	Warn = codes.Warn
	Off  = codes.Off
)

// ParseAction parses "deny", "warn" or "off".
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case Deny, Warn, Off:
		return a, nil
	}
	return "", fmt.Errorf("enforcement action %q: must be deny, warn or off", s)
}

// Check names a group of rules that share one enforcement action. The checks, the codes each
// covers and their default actions are declared in pkg/codes (docs/codes.md).
type Check = codes.Check

// Checks returns every check, in the order the validating handler runs them.
func Checks() []Check {
	out := make([]Check, 0, len(codes.Checks()))
	for _, ci := range codes.Checks() {
		out = append(out, ci.Check)
	}
	return out
}

// defaultActions are the declared defaults (pkg/codes).
func defaultActions() map[Check]Action {
	out := make(map[Check]Action, len(codes.Checks()))
	for _, ci := range codes.Checks() {
		out[ci.Check] = ci.Default
	}
	return out
}

// DefaultAction returns the default action of c (Deny for an unknown check: fail closed).
func DefaultAction(c Check) Action { return c.Default() }

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
	_, ok := c.Info()
	return ok
}

func checkList() string {
	names := make([]string, 0, len(Checks()))
	for _, c := range Checks() {
		names = append(names, string(c))
	}
	return strings.Join(names, ", ")
}
