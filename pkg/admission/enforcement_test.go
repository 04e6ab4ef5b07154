package admission

import (
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// The defaults are the declared ones (pkg/codes), for DefaultEnforcement and the zero value alike,
// and every declared check is enforced.
func TestDefaultEnforcementIsTheDeclaration(t *testing.T) {
	e := DefaultEnforcement()
	var zero Enforcement
	for _, ci := range codes.Checks() {
		if e.Action(ci.Check) != ci.Default || zero.Action(ci.Check) != ci.Default {
			t.Errorf("%s: default %s, zero value %s, want %s", ci.Check, e.Action(ci.Check), zero.Action(ci.Check), ci.Default)
		}
	}
	if len(Checks()) != len(codes.Checks()) {
		t.Errorf("%d checks, %d declared", len(Checks()), len(codes.Checks()))
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
