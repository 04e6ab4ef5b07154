package admission

import (
	"strings"
	"unicode/utf8"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// MaxWarningLength is the longest warning the webhook returns, in characters (kubectl prints each
// warning on its own line).
const MaxWarningLength = 120

// Problem is one thing a check found wrong. It never holds a secret value.
type Problem struct {
	// Check is the check whose enforcement action applies.
	Check Check
	// Code is the rule's code: a pkg/ec2 code, one of this package's, or a pkg/policycheck finding
	// code.
	Code string
	// Severity: an error is subject to the check's action; a warning is at most warned about.
	Severity ec2.Severity
	// Field is the field path the problem is about, e.g. spec.awsEc2.filters[1].
	Field string
	// Message says what is wrong; Fix how to fix it (may be empty).
	Message string
	Fix     string
}

// Outcome is what the problem does under action a: Deny, Warn or Off. A warning-severity problem
// never denies.
func (p Problem) Outcome(a Action) Action {
	if p.Severity == ec2.SeverityWarning && a == Deny {
		return Warn
	}
	return a
}

// DenialLine renders the problem for a denial message: `CODE field: what is wrong — how to fix`.
func (p Problem) DenialLine() string {
	var b strings.Builder
	b.WriteString(p.Code)
	if p.Field != "" {
		b.WriteString(" ")
		b.WriteString(p.Field)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimSuffix(strings.TrimSpace(p.Message), "."))
	if fix := strings.TrimSpace(p.Fix); fix != "" {
		b.WriteString(" — ")
		b.WriteString(strings.TrimSuffix(fix, "."))
	}
	return b.String()
}

// Warning renders the problem as an admission warning of at most MaxWarningLength characters:
// `CODE field: what is wrong`, with the field relative to the awsEc2 block and the text cut with
// "…" when too long. The code leads, so the full explanation is one search away (docs/codes.md,
// docs/webhook.md).
func (p Problem) Warning() string {
	var b strings.Builder
	b.WriteString(p.Code)
	if f := shortField(p.Field); f != "" {
		b.WriteString(" ")
		b.WriteString(f)
	}
	b.WriteString(": ")
	b.WriteString(strings.TrimSuffix(strings.TrimSpace(p.Message), "."))
	return truncateRunes(oneLine(b.String()), MaxWarningLength)
}

// newProblem renders code c's problem on field from its declaration (pkg/codes): check, severity,
// message and fix.
func newProblem(c codes.Code, field string, args ...any) Problem {
	return Problem{Check: c.Check(), Code: string(c), Severity: c.Severity(), Field: field, Message: c.Message(args...), Fix: c.Fix(args...)}
}

// problemFromFinding converts a pkg/ec2 finding.
func problemFromFinding(c Check, f ec2.Finding) Problem {
	return Problem{Check: c, Code: string(f.Code), Severity: f.Severity, Field: f.Field, Message: f.Message, Fix: f.Fix}
}

// shortField drops the awsEc2 block's prefix from a field path (both shapes).
func shortField(f string) string {
	for _, prefix := range []string{ec2.ShapeLegacy.String() + ".", ec2.ShapeV1.String() + "."} {
		if strings.HasPrefix(f, prefix) {
			return strings.TrimPrefix(f, prefix)
		}
	}
	return f
}

// oneLine replaces line breaks with spaces.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// truncateRunes cuts s to at most n characters, ending with "…" when cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimRight(string(r[:n-1]), " ") + "…"
}
