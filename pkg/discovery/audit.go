package discovery

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// IAM decisions (as in the webhook's ec2guard.io/iam-decision) and the discoverer's sources.
const (
	DecisionAllowed      = policycheck.Allowed
	DecisionImplicitDeny = policycheck.ImplicitDeny
	DecisionExplicitDeny = policycheck.ExplicitDeny
	DecisionUnknown      = string(collect.Unknown)

	// SourceListing is the refresh's own paginated ec2:DescribeInstances with the Upstream's
	// credentials: the ground truth, like SPEC.md's dry-run source (whose extra call it saves).
	SourceListing = "describe-instances"
	// SourceLocal is the IAM engine over the principal's collected policies (SPEC.md "local").
	SourceLocal = collect.SourceLocal
	// SourceNone: no source decided.
	SourceNone = collect.SourceNone
)

// IAMStatus is a credential group's IAM decision for ec2:DescribeInstances in its region.
type IAMStatus struct {
	Principal string `json:"principal,omitempty"`
	Decision  string `json:"decision"`
	Source    string `json:"source"`
	// Sources are every source's answer, the deciding one first among equals (listing, local).
	Sources []SourceDecision `json:"sources,omitempty"`
	// RegionPinned says whether the policies allow DescribeInstances only in named regions (the
	// only way IAM can make credentials "restrictive"); nil when the engine could not tell.
	RegionPinned *bool `json:"regionPinned,omitempty"`
}

// SourceDecision is one source's answer.
type SourceDecision struct {
	Source   string `json:"source"`
	Decision string `json:"decision"`
	// Reason is set when the source denied or could not decide.
	Reason string `json:"reason,omitempty"`
}

// GroupAudit is the audit of one credential group after a refresh.
type GroupAudit struct {
	IAM   IAMStatus
	scope policycheck.Scope
}

// Consistency is the consistency class of an Upstream of the group (SPEC.md): its filters
// against the group's credentials. Without a known region pinning the credentials count as
// permissive.
func (a GroupAudit) Consistency(hasFilters bool) string {
	return string(policycheck.Classify(policycheck.Decision{Result: a.IAM.Decision}, hasFilters, a.scope))
}

// Auditor re-evaluates a credential group's IAM decision on every refresh with the shared IAM
// engine (pkg/policycheck) over the principal's policies (pkg/policycheck/collect, cached with a
// TTL), beside the listing's own outcome.
type Auditor struct {
	engine    *policycheck.Engine
	collector *collect.Collector
	// localSource is the local source (a.local; tests replace it); nil disables it.
	localSource func(ctx context.Context, clients *awsclients.Clients, region string) (SourceDecision, string, *policycheck.Scope)
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
	st := IAMStatus{Sources: []SourceDecision{listing}}
	var scope policycheck.Scope
	if a != nil && a.localSource != nil && clients != nil && !final {
		local, principal, sc := a.safeLocal(ctx, clients, region)
		st.Principal = principal
		st.Sources = append(st.Sources, local)
		if sc != nil {
			scope = *sc
			st.RegionPinned = &sc.RegionPinned
		}
	}
	st.Decision, st.Source = DecisionUnknown, SourceNone
	for _, s := range st.Sources {
		if s.Decision != DecisionUnknown {
			st.Decision, st.Source = s.Decision, s.Source
			break
		}
		if final {
			break
		}
	}
	return GroupAudit{IAM: st, scope: scope}
}

// listingDecision reads the listing's outcome. final is true when it makes every other source
// moot: the credentials themselves were rejected.
func listingDecision(err error) (SourceDecision, bool) {
	d := SourceDecision{Source: SourceListing}
	var apiErr smithy.APIError
	switch {
	case err == nil:
		d.Decision = DecisionAllowed
	case errors.As(err, &apiErr) && (apiErr.ErrorCode() == ec2api.CodeUnauthorizedOperation || apiErr.ErrorCode() == ec2api.CodeAccessDenied):
		d.Decision = DecisionImplicitDeny
		d.Reason = ErrorSummary(err)
	case awsclients.IsInvalidCredentials(err):
		d.Decision = DecisionUnknown
		d.Reason = "AWS rejected the credentials: " + ErrorSummary(err)
		return d, true
	default:
		d.Decision = DecisionUnknown
		d.Reason = ErrorSummary(err)
	}
	return d, false
}

// safeLocal runs the local source and turns a panic in it (the IAM engine, the policy
// collection) into an unknown decision, so that one bad policy set cannot take the discoverer
// down with every group.
func (a *Auditor) safeLocal(ctx context.Context, clients *awsclients.Clients, region string) (d SourceDecision, principal string, scope *policycheck.Scope) {
	defer func() {
		if p := recover(); p != nil {
			d = SourceDecision{Source: SourceLocal, Decision: DecisionUnknown, Reason: fmt.Sprintf("internal error in the IAM audit: %v", p)}
			principal, scope = "", nil
		}
	}()
	return a.localSource(ctx, clients, region)
}

// local is the engine's decision over the collected policies, with the region-pinning scope
// when allowed.
func (a *Auditor) local(ctx context.Context, clients *awsclients.Clients, region string) (SourceDecision, string, *policycheck.Scope) {
	d := SourceDecision{Source: SourceLocal, Decision: DecisionUnknown}
	p, err := clients.Principal(ctx)
	if err != nil {
		d.Reason = "cannot resolve the principal: " + ErrorSummary(err)
		return d, "", nil
	}
	pols, err := a.collector.Collect(ctx, collect.Request{
		PrincipalARN: p.ARN, CredentialKey: clients.Key.String(), Upstream: clients.IAM, CredentialSource: clients.Key.CredentialSource(),
	})
	if err != nil {
		d.Reason = fmt.Sprintf("cannot collect the policies of %s: %s", p.ARN, ErrorSummary(err))
		return d, p.ARN, nil
	}
	in, err := pols.PolicySetInput()
	if err != nil {
		d.Reason = fmt.Sprintf("cannot read the policies of %s: %v", p.ARN, err)
		return d, p.ARN, nil
	}
	ps, err := policycheck.NewPolicySet(in)
	if err != nil {
		d.Reason = fmt.Sprintf("cannot evaluate the policies of %s: %v", p.ARN, err)
		return d, p.ARN, nil
	}
	dec, err := a.engine.Evaluate(ctx, ps, policycheck.DescribeInstancesRequest(p.ARN, p.Account, region))
	if err != nil {
		d.Reason = fmt.Sprintf("evaluating ec2:DescribeInstances for %s: %v", p.ARN, err)
		return d, p.ARN, nil
	}
	d.Decision = dec.Result
	if !dec.IsAllowed() {
		d.Reason = dec.Summary()
		return d, p.ARN, nil
	}
	scope, err := a.engine.CredentialScope(ctx, ps, p.ARN, p.Account, false)
	if err != nil {
		return d, p.ARN, nil
	}
	return d, p.ARN, &scope
}
