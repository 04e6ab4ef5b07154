package admission

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// One function per rule group. Each returns the problems it found (nil when the check passes);
// the validating handler applies the check's enforcement action and counts the results.

// checkSpec runs pkg/ec2's spec rules.
func checkSpec(ctx context.Context, u *ec2.Upstream) []Problem {
	var out []Problem
	for _, f := range u.CheckContext(ctx) {
		out = append(out, problemFromFinding(CheckSpec, f))
	}
	return out
}

// checkSecret checks the referenced Secret (s is nil when it does not exist; readErr is set when it
// could not be read) and returns its credentials when usable.
func checkSecret(u *ec2.Upstream, s *corev1.Secret, readErr error) (ec2.Credentials, []Problem) {
	field := u.Path().Child("secretRef").String()
	if readErr != nil {
		ref, _ := u.SecretName()
		if nw, ok := isNotWatched(readErr); ok {
			return ec2.Credentials{}, []Problem{{
				Check: CheckSecret, Code: string(CodeSecretNotWatched), Severity: ec2.SeverityError, Field: field,
				Message: fmt.Sprintf("secret %s is in a namespace ec2guard does not read Secrets from (%s)", ref, strings.Join(nw.Namespaces, ", ")),
				Fix:     "put the secret in one of those namespaces, or add its namespace to the webhook's --secret-namespaces",
			}}
		}
		return ec2.Credentials{}, []Problem{{
			Check: CheckSecret, Code: string(CodeSecretUnreadable), Severity: ec2.SeverityError, Field: field,
			Message: fmt.Sprintf("cannot read secret %s: %v", ref, readErr),
			Fix:     "retry; if it persists check the webhook's RBAC (get, list, watch secrets) and its logs",
		}}
	}
	creds, findings := u.CheckSecret(s, ec2.SeverityError)
	var out []Problem
	for _, f := range findings {
		out = append(out, problemFromFinding(CheckSecret, f))
	}
	return creds, out
}

// checkCredentials: AWS must accept the access key, and roleArn must be assumable.
func checkCredentials(res *IAMResult, field string) []Problem {
	if res == nil || res.Credentials == nil {
		return nil
	}
	c := res.Credentials
	return []Problem{{Check: CheckCredentials, Code: string(c.Code), Severity: ec2.SeverityError, Field: field, Message: c.Message, Fix: c.Fix}}
}

// checkIAMDeny: the principal must be allowed ec2:DescribeInstances in the Upstream's region. The
// problem names the deciding source; the local engine's findings (which statement, why, the fix)
// follow as problems of their own.
func checkIAMDeny(res *IAMResult, region, field string) []Problem {
	if res == nil || !res.Denied() {
		return nil
	}
	code, kind := CodeIAMImplicitDeny, "no statement allows it (implicit deny)"
	if res.Decision == DecisionExplicitDeny {
		code, kind = CodeIAMExplicitDeny, "a Deny statement denies it (explicit deny)"
	}
	explained := res.Local != nil && res.Local.Result == res.Decision
	msg := fmt.Sprintf("%s may not call ec2:DescribeInstances in %s: %s, decided by the %s source", res.Principal, region, kind, res.Source)
	if !explained {
		msg += ": " + sourceReason(res, res.Source)
		if res.Local != nil {
			msg += fmt.Sprintf("; the collected IAM policies say %s, so a permissions boundary, SCP or RCP ec2guard cannot read decides", res.Local.Result)
		}
	}
	fix := fmt.Sprintf("allow ec2:DescribeInstances with \"Resource\": \"*\" (pin the region with aws:RequestedRegion = %s); DescribeInstances cannot be scoped by instance ARN or tag in IAM, so keep tag scoping in the Upstream's filters", region)
	if res.Decision == DecisionExplicitDeny {
		fix = "remove or narrow the Deny statement named here, or use credentials it does not apply to"
	}
	out := []Problem{{Check: CheckIAMDeny, Code: string(code), Severity: ec2.SeverityError, Field: field, Message: msg, Fix: fix}}
	if explained {
		out = append(out, policyFindings(res.Local, field)...)
		if len(res.Local.Findings) == 0 && res.Decision == DecisionExplicitDeny {
			out[0].Message += ": " + res.Local.Summary()
		}
	}
	return out
}

// policyFindings turns the engine's findings into problems (their codes are pkg/policycheck's).
func policyFindings(d *policycheck.Decision, field string) []Problem {
	out := make([]Problem, 0, len(d.Findings))
	for _, f := range d.Findings {
		out = append(out, Problem{Check: CheckIAMDeny, Code: f.Code, Severity: ec2.SeverityError, Field: field, Message: f.Message, Fix: f.Fix})
	}
	return out
}

// checkIAMUnknown: the IAM decision should be known; and the sources should agree.
func checkIAMUnknown(res *IAMResult, field string) []Problem {
	if res == nil || res.Credentials != nil {
		return nil
	}
	if !res.Known() {
		return []Problem{{
			Check: CheckIAMUnknown, Code: string(CodeIAMUnknown), Severity: ec2.SeverityError, Field: field,
			Message: "IAM decision unknown: " + res.Unknown,
			Fix:     "check that AWS (STS, IAM) is reachable from the webhook and that the credentials or the auditor identity may read IAM",
		}}
	}
	if a, b, ok := res.Disagreement(); ok {
		return []Problem{{
			Check: CheckIAMUnknown, Code: string(CodeIAMSourcesDisagree), Severity: ec2.SeverityWarning, Field: field,
			Message: fmt.Sprintf("IAM sources disagree: %s says %s, %s says %s", a.Source, a.Decision, b.Source, b.Decision),
			Fix:     "a permissions boundary, SCP or RCP the collector cannot read usually explains it; the first source decides",
		}}
	}
	return nil
}

// checkPermissiveNoFilters: credentials that see every instance of the region and no filters route
// to every running instance.
func checkPermissiveNoFilters(class string, field string) []Problem {
	if class != string(policycheck.PermissiveCredentialsNoFilters) {
		return nil
	}
	return []Problem{{
		Check: CheckPermissiveNoFilters, Code: string(CodePermissiveNoFilters), Severity: ec2.SeverityError, Field: field,
		Message: "no filters and credentials that see every instance in the region: routes to all running instances",
		Fix:     "add tag filters, or use credentials of an account or region that holds only the intended instances",
	}}
}

func sourceReason(res *IAMResult, source string) string {
	for _, sr := range res.Sources {
		if sr.Source == source {
			return sr.Reason
		}
	}
	return ""
}

// iamField is the field IAM problems are reported on: roleArn when a role is assumed, else the
// secretRef, else the awsEc2 block (the pod's own identity).
func iamField(u *ec2.Upstream) string {
	switch {
	case u.Spec.RoleARN != "":
		return u.Path().Child("roleArn").String()
	case u.Spec.SecretRef != nil:
		return u.Path().Child("secretRef").String()
	}
	return u.Path().String()
}
