package verdict

import (
	"context"
	"fmt"
	"strings"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// Source gives the IAM result of an Upstream's credentials: each front end implements it with what
// it has (the webhook's IAM evaluator, the discoverer's audit, the CLI's policy files). It returns
// nil when IAM is not evaluated for u (the access gate is closed, the spec or the secret make the
// credentials unusable, no policies were given).
type Source interface {
	IAM(ctx context.Context, u *ec2.Upstream) *IAMResult
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, u *ec2.Upstream) *IAMResult

// IAM implements Source.
func (f SourceFunc) IAM(ctx context.Context, u *ec2.Upstream) *IAMResult { return f(ctx, u) }

// Problem is one IAM problem, with the check whose enforcement applies. It never holds a secret
// value.
type Problem struct {
	Check    codes.Check
	Code     string
	Severity ec2.Severity
	Field    string
	Message  string
	Fix      string
}

// Verdict is the IAM verdict for one Upstream.
type Verdict struct {
	// IAM is the result the source gave (nil when IAM was not evaluated).
	IAM *IAMResult
	// Principal is the IAM ARN whose policies decide ("" when unknown); Decision and Source as in
	// IAMResult (DecisionUnknown/SourceNone when not evaluated).
	Principal string
	Decision  string
	Source    string
	// Consistency is a policycheck.ConsistencyClass or ConsistencyUnknown.
	Consistency string
	// Problems in the webhook's check order (codes.Checks()).
	Problems []Problem
}

// Evaluated reports whether IAM was evaluated (the source gave a result).
func (v Verdict) Evaluated() bool { return v.IAM != nil }

// Of is the one IAM verdict pipeline: the source's result for u, its consistency class and its
// problems.
func Of(ctx context.Context, u *ec2.Upstream, src Source) Verdict {
	var res *IAMResult
	if src != nil {
		res = src.IAM(ctx, u)
	}
	return FromResult(u, res)
}

// FromResult is Of for a result already in hand (res may be nil: not evaluated).
func FromResult(u *ec2.Upstream, res *IAMResult) Verdict {
	v := Verdict{IAM: res, Decision: DecisionUnknown, Source: SourceNone, Consistency: ConsistencyUnknown}
	if res == nil {
		return v
	}
	v.Principal, v.Decision, v.Source = res.Principal, res.Decision, res.Source
	v.Consistency = Consistency(res, len(u.Spec.Filters) > 0)
	field := IAMField(u)
	v.Problems = append(v.Problems, checkCredentials(res, field)...)
	v.Problems = append(v.Problems, checkIAMDeny(res, u.Spec.Region, field)...)
	v.Problems = append(v.Problems, checkIAMUnknown(res, field)...)
	v.Problems = append(v.Problems, checkPermissiveNoFilters(v.Consistency, u.Path().Child("filters").String())...)
	return v
}

// Consistency puts an Upstream into its consistency class (docs/webhook.md). Credentials that AWS
// rejects or that may not list instances are credentials-deny; an unknown decision is
// ConsistencyUnknown. For allowed credentials the class comes from policycheck.Classify with the
// measured scope (an empty one when not measured) and the secret owner's statement that the
// account is dedicated (res.DedicatedAccount), which nothing in IAM can show: with it the
// credentials are restrictive, without it the filters decide between the two permissive classes.
func Consistency(res *IAMResult, hasFilters bool) string {
	switch {
	case res == nil:
		return ConsistencyUnknown
	case res.Credentials != nil || res.Denied():
		return string(policycheck.CredentialsDeny)
	case !res.Known():
		return ConsistencyUnknown
	}
	var scope policycheck.Scope
	if res.Scope != nil {
		scope = *res.Scope
	}
	scope.DedicatedAccount = res.DedicatedAccount
	return string(policycheck.Classify(policycheck.Decision{Result: policycheck.Allowed}, hasFilters, scope))
}

// IAMField is the field IAM problems are reported on: roleArn when a role is assumed, else the
// secretRef, else the awsEc2 block (the pod's own identity).
func IAMField(u *ec2.Upstream) string {
	switch {
	case u.Spec.RoleARN != "":
		return u.Path().Child("roleArn").String()
	case u.Spec.SecretRef != nil:
		return u.Path().Child("secretRef").String()
	}
	return u.Path().String()
}

// checkCredentials: AWS must accept the access key, and roleArn must be assumable.
func checkCredentials(res *IAMResult, field string) []Problem {
	if res.Credentials == nil {
		return nil
	}
	c := res.Credentials
	return []Problem{{Check: c.Code.Check(), Code: string(c.Code), Severity: c.Code.Severity(), Field: field, Message: c.Message, Fix: c.Fix}}
}

// principalName names the principal in a message ("the principal" when unknown, e.g. offline).
func principalName(res *IAMResult) string {
	if res.Principal == "" {
		return "the principal"
	}
	return res.Principal
}

// checkIAMDeny: the principal must be allowed ec2:DescribeInstances in the Upstream's region. The
// problem names the deciding source; the local engine's findings (which statement, why, the fix)
// follow as problems of their own.
func checkIAMDeny(res *IAMResult, region, field string) []Problem {
	if !res.Denied() {
		return nil
	}
	code := codes.IAMImplicitDeny
	if res.Decision == DecisionExplicitDeny {
		code = codes.IAMExplicitDeny
	}
	explained := res.Local != nil && res.Local.Result == res.Decision
	detail := ""
	switch {
	case !explained:
		detail = ": " + sourceReason(res, res.Source)
		if res.Local != nil {
			detail += fmt.Sprintf("; the collected IAM policies say %s, so a permissions boundary, SCP or RCP ec2guard cannot read decides", res.Local.Result)
		}
	case len(res.Local.Findings) == 0 && res.Decision == DecisionExplicitDeny:
		detail = ": " + res.Local.Summary()
	}
	out := []Problem{problem(code, field, principalName(res), region, res.Source, detail)}
	if explained {
		for _, f := range res.Local.Findings {
			out = append(out, Problem{Check: code.Check(), Code: f.Code, Severity: code.Severity(), Field: field, Message: f.Message, Fix: f.Fix})
		}
	}
	return out
}

// checkIAMUnknown: the IAM decision should be known; and the sources should agree.
func checkIAMUnknown(res *IAMResult, field string) []Problem {
	if res.Credentials != nil {
		return nil
	}
	if !res.Known() {
		return []Problem{problem(codes.IAMUnknown, field, res.Unknown)}
	}
	if a, b, ok := res.Disagreement(); ok {
		return []Problem{problem(codes.IAMSourcesDisagree, field, a.Source, a.Decision, b.Source, b.Decision)}
	}
	return nil
}

// checkPermissiveNoFilters: credentials that see every instance of the region and no filters route
// to every running instance.
func checkPermissiveNoFilters(class string, field string) []Problem {
	if class != string(policycheck.PermissiveCredentialsNoFilters) {
		return nil
	}
	return []Problem{problem(codes.PermissiveNoFilters, field)}
}

// problem renders code c's problem on field from its declaration.
func problem(c codes.Code, field string, args ...any) Problem {
	return Problem{Check: c.Check(), Code: string(c), Severity: c.Severity(), Field: field, Message: c.Message(args...), Fix: c.Fix(args...)}
}

func sourceReason(res *IAMResult, source string) string {
	for _, sr := range res.Sources {
		if sr.Source == source {
			return sr.Reason
		}
	}
	return ""
}

// BlocksIAM reports whether the spec errors at errorFields (the field paths of u's error-severity
// spec problems) make the IAM verdict meaningless: the region, roleArn or secretRef cannot be used.
// Every front end skips IAM for such an Upstream.
func BlocksIAM(u *ec2.Upstream, errorFields []string) bool {
	p := u.Path()
	prefixes := []string{p.Child("region").String(), p.Child("roleArn").String(), p.Child("secretRef").String()}
	for _, f := range errorFields {
		for _, prefix := range prefixes {
			if f == prefix || strings.HasPrefix(f, prefix+".") {
				return true
			}
		}
	}
	return false
}
