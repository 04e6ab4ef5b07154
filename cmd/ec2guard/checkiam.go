package main

import (
	"context"
	"fmt"
	"os"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// iamResult is the IAM decision for ec2:DescribeInstances in the Upstream's region.
type iamResult struct {
	Decision    string // allowed, implicitDeny, explicitDeny, or not-evaluated
	Source      string // local, or none
	Consistency string // a SPEC.md consistency class, or unknown
	Findings    ec2.Findings
	Note        string
}

// offlineIAM evaluates the --policy documents with the engine the webhook uses. A nil *offlineIAM
// (no --policy) evaluates nothing and says so.
type offlineIAM struct {
	engine *policycheck.Engine
	set    *policycheck.PolicySet
	files  int
}

// newOfflineIAM reads and parses the --policy files; an unreadable or invalid file is an input
// error naming the file (and the JSON path of the problem).
func newOfflineIAM(ctx context.Context, files []string) (*offlineIAM, error) {
	if len(files) == 0 {
		return nil, nil
	}
	docs := make([]policycheck.Document, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read policy %s: %v", f, err)
		}
		docs = append(docs, policycheck.Document{Name: f, JSON: b})
	}
	set, err := policycheck.IdentityPolicySet(docs...)
	if err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		return nil, fmt.Errorf("start the IAM engine: %w", err)
	}
	return &offlineIAM{engine: engine, set: set, files: len(files)}, nil
}

// describe is the IAM part of the summary line.
func (o *offlineIAM) describe() string {
	if o == nil {
		return "IAM not evaluated (no --policy)"
	}
	return fmt.Sprintf("IAM evaluated against %s", plural(o.files, "policy file"))
}

// evaluate decides ec2:DescribeInstances in the Upstream's region and classifies consistency. A
// denial becomes an error with the webhook's code (EC2G501/EC2G502) followed by the engine's
// findings (RESOURCE_MISMATCH, ...); no filters with permissive credentials is a warning (EC2G601),
// as the webhook's default enforcement has it.
func (o *offlineIAM) evaluate(ctx context.Context, u *ec2.Upstream) iamResult {
	if o == nil {
		return iamResult{Decision: iamNotEvaluated, Source: iamSourceNone, Consistency: consistencyUnknown,
			Note: "IAM not evaluated: pass the principal's policies with --policy"}
	}
	notEvaluated := func(why string) iamResult {
		return iamResult{Decision: iamNotEvaluated, Source: iamSourceNone, Consistency: consistencyUnknown, Note: "IAM not evaluated: " + why}
	}
	if info := ec2.LookupRegion(u.Spec.Region); !info.Valid || info.Pseudo {
		return notEvaluated("the region is not usable")
	}
	v, err := o.engine.CheckUpstream(ctx, o.set, policycheck.UpstreamFacts{Region: u.Spec.Region, HasFilters: len(u.Spec.Filters) > 0})
	if err != nil {
		return notEvaluated(err.Error())
	}
	res := iamResult{Decision: string(v.Decision.Result), Source: admission.SourceLocal, Consistency: string(v.Consistency)}
	if u.Spec.RoleARN != "" {
		res.Note = "roleArn is set: the --policy documents are taken as the role's policies"
	}
	at := iamFieldPath(u)
	if !v.Decision.IsAllowed() {
		code, kind := admission.CodeIAMImplicitDeny, "no statement allows it (implicit deny)"
		fix := fmt.Sprintf(`allow ec2:DescribeInstances with "Resource": "*" (pin the region with aws:RequestedRegion = %s); DescribeInstances cannot be scoped by instance ARN or tag in IAM, so keep tag scoping in the Upstream's filters`, u.Spec.Region)
		if v.Decision.Result == policycheck.ExplicitDeny {
			code, kind = admission.CodeIAMExplicitDeny, "a Deny statement denies it (explicit deny)"
			fix = "remove or narrow the Deny statement named here, or use credentials it does not apply to"
		}
		msg := fmt.Sprintf("the policies do not allow ec2:DescribeInstances in %s: %s", u.Spec.Region, kind)
		if len(v.Decision.Findings) == 0 {
			msg += "; " + v.Summary // no finding below explains it: name the statements here
		}
		res.Findings = append(res.Findings, ec2.Finding{Code: code, Severity: ec2.SeverityError, Field: at.String(),
			Type: field.ErrorTypeForbidden, Message: msg, Fix: fix})
		for _, f := range v.Decision.Findings {
			res.Findings = append(res.Findings, ec2.Finding{Code: ec2.Code(f.Code), Severity: ec2.SeverityError, Field: at.String(),
				Type: field.ErrorTypeForbidden, Message: f.Message, Fix: f.Fix})
		}
	}
	if v.Consistency == policycheck.PermissiveCredentialsNoFilters {
		res.Findings = append(res.Findings, ec2.Finding{Code: admission.CodePermissiveNoFilters, Severity: ec2.SeverityWarning,
			Field: u.Path().Child("filters").String(), Type: field.ErrorTypeInvalid,
			Message: "no filters and credentials that see every instance in the region: routes to all running instances",
			Fix:     "add tag filters, or use credentials of an account that holds only the intended instances"})
	}
	return res
}

// iamFieldPath is where an IAM problem is reported: the role, else the secret, else the spec.
func iamFieldPath(u *ec2.Upstream) *field.Path {
	switch {
	case u.Spec.RoleARN != "":
		return u.Path().Child("roleArn")
	case u.Spec.SecretRef != nil:
		return u.Path().Child("secretRef")
	}
	return u.Path()
}
