package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	iamverdict "github.com/ec2guard/ec2guard/pkg/verdict"
)

// iamResult is the IAM decision for ec2:DescribeInstances in the Upstream's region.
type iamResult struct {
	Principal   string // the principal the pipeline names ("" offline, where it is unknown)
	Decision    string // allowed, implicitDeny, explicitDeny, or not-evaluated
	Source      string // local, or none
	Consistency string // a consistency class (docs/iam-semantics.md), or unknown
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

// IAM is the CLI's IAM source for the one pipeline (pkg/verdict): the engine the webhook uses, as
// its local source, over the --policy documents. Offline the real principal is unknown: the
// documents are evaluated for policycheck.OfflinePrincipal and the result names no principal.
func (o *offlineIAM) IAM(ctx context.Context, u *ec2.Upstream) *iamverdict.IAMResult {
	sr, d, scope := iamverdict.LocalSet(ctx, o.engine, o.set, policycheck.OfflinePrincipal, "", u.Spec.Region, iamverdict.LocalOptions{Scope: true})
	res := &iamverdict.IAMResult{Sources: []iamverdict.SourceResult{sr}, Local: d, Scope: scope}
	iamverdict.Decide(res)
	return res
}

// evaluate runs the one IAM pipeline (pkg/verdict) for u with the --policy documents and renders
// its problems as findings with the severity the webhook's default enforcement gives them;
// dedicated is the secret owner's dedicated-account statement.
func (o *offlineIAM) evaluate(ctx context.Context, u *ec2.Upstream, spec ec2.Findings, dedicated bool) iamResult {
	if o == nil {
		return iamResult{Decision: iamNotEvaluated, Source: iamSourceNone, Consistency: consistencyUnknown,
			Note: "IAM not evaluated: pass the principal's policies with --policy"}
	}
	return evaluateWith(ctx, u, spec, iamverdict.SourceFunc(func(ctx context.Context, u *ec2.Upstream) *iamverdict.IAMResult {
		res := o.IAM(ctx, u)
		res.DedicatedAccount = dedicated
		return res
	}))
}

// evaluateWith is evaluate with the IAM source src: unless a spec error or the region makes IAM
// meaningless, the pipeline's verdict rendered for the CLI.
func evaluateWith(ctx context.Context, u *ec2.Upstream, spec ec2.Findings, src iamverdict.Source) iamResult {
	var errorFields []string
	for _, f := range spec {
		if f.Severity == ec2.SeverityError {
			errorFields = append(errorFields, f.Field)
		}
	}
	if iamverdict.BlocksIAM(u, errorFields) {
		return iamResult{Decision: iamNotEvaluated, Source: iamSourceNone, Consistency: consistencyUnknown,
			Note: "IAM not evaluated: the region, roleArn or secretRef has an error (as in the webhook)"}
	}
	if info := ec2.LookupRegion(u.Spec.Region); !info.Valid || info.Pseudo {
		return iamResult{Decision: iamNotEvaluated, Source: iamSourceNone, Consistency: consistencyUnknown,
			Note: "IAM not evaluated: the region is not usable"}
	}
	return fromVerdict(u, iamverdict.Of(ctx, u, src))
}

// fromVerdict renders the pipeline's verdict for the CLI: each problem becomes a finding whose
// severity is what the webhook's default enforcement of its check does (deny: error, warn:
// warning, off: not shown).
func fromVerdict(u *ec2.Upstream, v iamverdict.Verdict) iamResult {
	res := iamResult{Principal: v.Principal, Decision: v.Decision, Source: v.Source, Consistency: v.Consistency}
	if u.Spec.RoleARN != "" {
		res.Note = "roleArn is set: the --policy documents are taken as the role's policies"
	}
	for _, p := range v.Problems {
		sev := p.Severity
		switch p.Check.Default() {
		case codes.Off:
			continue
		case codes.Warn:
			sev = ec2.SeverityWarning
		}
		typ := field.ErrorTypeForbidden
		if p.Check == codes.CheckPermissiveNoFilters {
			typ = field.ErrorTypeInvalid
		}
		res.Findings = append(res.Findings, ec2.Finding{Code: ec2.Code(p.Code), Severity: sev, Field: p.Field, Type: typ, Message: p.Message, Fix: p.Fix})
	}
	return res
}
