package admission

import (
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// The defaults (docs/webhook.md): spec errors, secret problems, IAM denials and unreadable
// cross-namespace secrets deny; IAM unknown and permissive-credentials-no-filters warn.
func TestDefaultEnforcementIsTheSpec(t *testing.T) {
	want := map[Check]Action{
		codes.CheckSpec: Deny, codes.CheckSecret: Deny, codes.CheckSecretAccess: Deny, codes.CheckCredentials: Deny,
		codes.CheckIAMDeny: Deny, codes.CheckIAMUnknown: Warn, codes.CheckPermissiveNoFilters: Warn,
	}
	e := DefaultEnforcement()
	var zero Enforcement
	for _, c := range Checks() {
		if e.Action(c) != want[c] || zero.Action(c) != want[c] {
			t.Errorf("%s: default %s, zero value %s, want %s", c, e.Action(c), zero.Action(c), want[c])
		}
	}
	if len(Checks()) != len(want) {
		t.Errorf("%d checks, want %d", len(Checks()), len(want))
	}
}

func TestParseAction(t *testing.T) {
	for in, want := range map[string]Action{"deny": Deny, " WARN ": Warn, "off": Off} {
		if got, err := ParseAction(in); err != nil || got != want {
			t.Errorf("ParseAction(%q) = %s, %v", in, got, err)
		}
	}
	if _, err := ParseAction("block"); err == nil || !strings.Contains(err.Error(), `"block"`) {
		t.Errorf("ParseAction(block): %v", err)
	}
}

func TestEnforcementWith(t *testing.T) {
	base := DefaultEnforcement()
	e, err := base.With(codes.CheckIAMUnknown, Deny)
	if err != nil {
		t.Fatal(err)
	}
	if e.Action(codes.CheckIAMUnknown) != Deny || base.Action(codes.CheckIAMUnknown) != Warn {
		t.Errorf("With changed %s / the original %s", e.Action(codes.CheckIAMUnknown), base.Action(codes.CheckIAMUnknown))
	}
	if _, err := base.With("bogus", Deny); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown check: %v", err)
	}
	if _, err := base.With(codes.CheckSpec, "maybe"); err == nil {
		t.Error("unknown action accepted")
	}
	if s := e.String(); !strings.Contains(s, "iam-unknown=deny") || !strings.Contains(s, "spec=deny") {
		t.Errorf("String() = %s", s)
	}
}
