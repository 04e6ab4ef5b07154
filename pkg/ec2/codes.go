package ec2

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// Code and Severity are pkg/codes' types: every code is declared there, with its severity,
// message template and fix (docs/codes.md is generated from that declaration).
type (
	Code     = codes.Code
	Severity = codes.Severity
)

// The severities.
const (
	// SeverityError rejects the Upstream (under the default enforcement action).
	SeverityError = codes.SeverityError
	// SeverityWarning is reported but does not reject.
	SeverityWarning = codes.SeverityWarning
)

// Finding is one result of a rule: an error or a warning with its code, the field path where the user
// wrote the offending value, what is wrong and how to fix it. A Finding never contains a secret value.
type Finding struct {
	Code     Code
	Severity Severity
	// Field is the path as field.Path renders it, e.g. `spec.awsEc2.filters[1]`.
	Field string
	// Message says what is wrong (without the code or the field).
	Message string
	// Fix says how to fix it; may be empty.
	Fix string
	// Type is the k8s field error type used when converting to a field.Error.
	Type field.ErrorType
	// BadValue is the offending value when it is safe to show (never a secret); nil otherwise.
	BadValue any
}

// String renders the finding as `CODE field: message (fix: ...)`.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(string(f.Code))
	b.WriteByte(' ')
	if f.Field != "" {
		b.WriteString(f.Field)
		b.WriteString(": ")
	}
	b.WriteString(f.Text())
	return b.String()
}

// Text is the message followed by the fix: `message; fix: ...` — without code and field.
func (f Finding) Text() string {
	if f.Fix == "" {
		return f.Message
	}
	return f.Message + "; fix: " + f.Fix
}

// FieldError converts the finding into a k8s field error whose Detail starts with the code.
func (f Finding) FieldError() *field.Error {
	t := f.Type
	if t == "" {
		t = field.ErrorTypeInvalid
	}
	bad := f.BadValue
	if bad == nil {
		bad = field.OmitValueType{}
	}
	return &field.Error{Type: t, Field: f.Field, BadValue: bad, Detail: string(f.Code) + " " + f.Text()}
}

// CodeOf returns the code at the start of a field error's Detail produced by this package.
func CodeOf(e *field.Error) (Code, bool) {
	if e == nil {
		return "", false
	}
	code, _, _ := strings.Cut(e.Detail, " ")
	if _, ok := codes.Lookup(Code(code)); !ok {
		return "", false
	}
	return Code(code), true
}

// Findings is a list of findings in the order the rules produced them.
type Findings []Finding

// Errors returns the error-severity findings as a field.ErrorList.
func (fs Findings) Errors() field.ErrorList {
	var out field.ErrorList
	for _, f := range fs {
		if f.Severity == SeverityError {
			out = append(out, f.FieldError())
		}
	}
	return out
}

// Warnings returns the warning-severity findings.
func (fs Findings) Warnings() Findings {
	var out Findings
	for _, f := range fs {
		if f.Severity == SeverityWarning {
			out = append(out, f)
		}
	}
	return out
}

// HasErrors reports whether any finding is an error.
func (fs Findings) HasErrors() bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Has reports whether any finding has code c.
func (fs Findings) Has(c Code) bool {
	for _, f := range fs {
		if f.Code == c {
			return true
		}
	}
	return false
}

// newFinding builds the finding of code c on path: its severity, message and fix come from the
// code's declaration (pkg/codes), rendered with args.
func newFinding(c Code, path *field.Path, t field.ErrorType, bad any, args ...any) Finding {
	p := ""
	if path != nil {
		p = path.String()
	}
	return Finding{Code: c, Severity: c.Severity(), Field: p, Message: c.Message(args...), Fix: c.Fix(args...), Type: t, BadValue: bad}
}
