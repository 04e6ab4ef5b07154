package admission

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

func TestProblemDenialLine(t *testing.T) {
	p := Problem{Code: "EC2G101", Field: "spec.awsEc2.filters[1]", Message: "exactly one of key or kvPair must be set.", Fix: "keep one."}
	if got, want := p.DenialLine(), "EC2G101 spec.awsEc2.filters[1]: exactly one of key or kvPair must be set — keep one"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	p.Fix = ""
	if got, want := p.DenialLine(), "EC2G101 spec.awsEc2.filters[1]: exactly one of key or kvPair must be set"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestProblemWarningIsShortWithCode(t *testing.T) {
	p := Problem{Code: "EC2G503", Field: "spec.upstreamSpec.awsEc2.secretRef",
		Message: "IAM decision unknown: " + strings.Repeat("sts:GetCallerIdentity failed: connection refused\n", 5)}
	w := p.Warning()
	if utf8.RuneCountInString(w) != MaxWarningLength || !strings.HasPrefix(w, "EC2G503 secretRef: IAM decision unknown") || !strings.HasSuffix(w, "…") {
		t.Errorf("warning %q (%d characters)", w, utf8.RuneCountInString(w))
	}
	if strings.Contains(w, "\n") {
		t.Error("warning has a line break")
	}
	short := Problem{Code: "EC2G112", Field: "spec.awsEc2.filters", Message: "no filters."}
	if got := short.Warning(); got != "EC2G112 filters: no filters" {
		t.Errorf("got %q", got)
	}
}

func TestProblemOutcome(t *testing.T) {
	errP := Problem{Severity: ec2.SeverityError}
	warnP := Problem{Severity: ec2.SeverityWarning}
	for _, tc := range []struct {
		p    Problem
		a    Action
		want Action
	}{
		{errP, Deny, Deny}, {errP, Warn, Warn}, {errP, Off, Off},
		{warnP, Deny, Warn}, {warnP, Warn, Warn}, {warnP, Off, Off},
	} {
		if got := tc.p.Outcome(tc.a); got != tc.want {
			t.Errorf("%s problem under %s: %s, want %s", tc.p.Severity, tc.a, got, tc.want)
		}
	}
}
