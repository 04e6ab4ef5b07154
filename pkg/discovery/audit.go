package discovery

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// GroupAudit is the audit of one credential group after a refresh.
type GroupAudit struct {
	// IAM is the status written for every Upstream of the group.
	IAM discovered.IAMStatus
	// result is the group's IAM result for the one pipeline (pkg/verdict).
	result *verdict.IAMResult
}

// Verdict is the one pipeline's verdict for u, an Upstream of the group: principal, decision,
// consistency and the coded IAM problems.
func (a GroupAudit) Verdict(u *ec2.Upstream) verdict.Verdict { return verdict.FromResult(u, a.result) }

// Result is the group's IAM result (shared; do not modify).
func (a GroupAudit) Result() *verdict.IAMResult { return a.result }

// Auditor re-evaluates a credential group's IAM decision on every refresh with the shared IAM
// engine (pkg/policycheck) over the principal's policies (pkg/policycheck/collect, cached with a
// TTL), beside the listing's own outcome.
type Auditor struct {
	engine    *policycheck.Engine
	collector *collect.Collector
	// localSource is the local source (a.local; tests replace it); nil disables it.
	localSource func(ctx context.Context, clients *awsclients.Clients, region string) (discovered.SourceDecision, string, *policycheck.Scope)
}

// NewAuditor returns an auditor; a nil engine or collector disables the local source.
func NewAuditor(engine *policycheck.Engine, collector *collect.Collector) *Auditor {
	a := &Auditor{engine: engine, collector: collector}
	if engine != nil && collector != nil {
		a.localSource = a.local
	}
	return a
}

// Audit decides for the group whose clients listed (or failed to list: listErr) instances in
// region. clients is nil when they could not be built (e.g. the secret is missing).
func (a *Auditor) Audit(ctx context.Context, clients *awsclients.Clients, region string, listErr error) GroupAudit {
	listing, final := listingDecision(listErr)
	res := &verdict.IAMResult{Sources: []verdict.SourceResult{listing}, DedicatedAccount: clients != nil && clients.DedicatedAccount}
	if final {
		res.Credentials = verdict.InvalidAccessKey(listing.Reason)
	}
	if a != nil && a.localSource != nil && clients != nil && !final {
		local, principal, sc := a.safeLocal(ctx, clients, region)
		res.Principal = principal
		res.Sources = append(res.Sources, verdict.SourceResult(local))
		res.Scope = sc
	}
	verdict.Decide(res)
	return AuditOf(res)
}

// AuditOf is the group audit for a decided IAM result (Audit's last step).
func AuditOf(res *verdict.IAMResult) GroupAudit {
	return GroupAudit{IAM: iamStatusOf(res), result: res}
}

// iamStatusOf is the status form of an IAM result.
func iamStatusOf(res *verdict.IAMResult) discovered.IAMStatus {
	st := discovered.IAMStatus{Principal: res.Principal, Decision: res.Decision, Source: res.Source}
	for _, sr := range res.Sources {
		st.Sources = append(st.Sources, discovered.SourceDecision(sr))
	}
	if res.Scope != nil {
		pinned := res.Scope.RegionPinned
		st.RegionPinned = &pinned
	}
	return st
}

// listingDecision reads the listing's outcome. final is true when it makes every other source
// moot: the credentials themselves were rejected.
func listingDecision(err error) (verdict.SourceResult, bool) {
	d := verdict.SourceResult{Source: verdict.SourceListing}
	var apiErr smithy.APIError
	switch {
	case err == nil:
		d.Decision = verdict.DecisionAllowed
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == ec2api.CodeUnauthorizedOperation || apiErr.ErrorCode() == ec2api.CodeAccessDenied):
		d.Decision = verdict.DecisionImplicitDeny
		d.Reason = ErrorSummary(err)
	case awsclients.IsInvalidCredentials(err):
		d.Decision = verdict.DecisionUnknown
		d.Reason = "AWS rejected the credentials: " + ErrorSummary(err)
		return d, true
	default:
		d.Decision = verdict.DecisionUnknown
		d.Reason = ErrorSummary(err)
	}
	return d, false
}

// safeLocal runs the local source and turns a panic in it (the IAM engine, the policy
// collection) into an unknown decision, so that one bad policy set cannot take the discoverer
// down with every group.
func (a *Auditor) safeLocal(ctx context.Context, clients *awsclients.Clients, region string) (d discovered.SourceDecision, principal string, scope *policycheck.Scope) {
	defer func() {
		if p := recover(); p != nil {
			d = discovered.SourceDecision{Source: verdict.SourceLocal, Decision: verdict.DecisionUnknown, Reason: fmt.Sprintf("internal error in the IAM audit: %v", p)}
			principal, scope = "", nil
		}
	}()
	return a.localSource(ctx, clients, region)
}

// local is the local source of the one pipeline (verdict.Local) over the collected policies, with
// the region-pinning scope when allowed.
func (a *Auditor) local(ctx context.Context, clients *awsclients.Clients, region string) (discovered.SourceDecision, string, *policycheck.Scope) {
	p, err := clients.Principal(ctx)
	if err != nil {
		return discovered.SourceDecision{Source: verdict.SourceLocal, Decision: verdict.DecisionUnknown, Reason: "cannot resolve the principal: " + ErrorSummary(err)}, "", nil
	}
	pols, err := a.collector.Collect(ctx, collect.Request{
		PrincipalARN: p.ARN, CredentialKey: clients.Key.String(), Upstream: clients.IAM, CredentialSource: clients.Key.CredentialSource(),
	})
	if err != nil {
		return discovered.SourceDecision{Source: verdict.SourceLocal, Decision: verdict.DecisionUnknown, Reason: fmt.Sprintf("cannot collect the policies of %s: %s", p.ARN, ErrorSummary(err))}, p.ARN, nil
	}
	in, err := pols.PolicySetInput()
	if err != nil {
		return discovered.SourceDecision(verdict.LocalFailure("cannot read the policies of "+p.ARN, err)), p.ARN, nil
	}
	sr, _, scope := verdict.Local(ctx, a.engine, in, p.ARN, p.Account, region, verdict.LocalOptions{Scope: true})
	if sr.Decision == verdict.DecisionAllowed {
		sr.Reason = "" // the status carries a reason only when the source denied or could not decide
	}
	return discovered.SourceDecision(sr), p.ARN, scope
}
