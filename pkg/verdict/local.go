package verdict

import (
	"context"
	"errors"
	"fmt"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// LocalOptions configures Local.
type LocalOptions struct {
	// Scope also measures the credentials' scope (region pinning) when allowed: one more
	// evaluation, which the discoverer's report shows.
	Scope bool
}

// Local is the local source: the IAM engine's decision for ec2:DescribeInstances in region over
// the principal's policy set. A policy set the engine refuses (over a size limit, invalid) is an
// unknown answer whose reason says why.
func Local(ctx context.Context, engine *policycheck.Engine, in policycheck.PolicySetInput, principal, account, region string, opts LocalOptions) (SourceResult, *policycheck.Decision, *policycheck.Scope) {
	ps, err := policycheck.NewPolicySet(in)
	if err != nil {
		return unknownLocal(fmt.Sprintf("cannot evaluate the IAM policies of %s", principal), err), nil, nil
	}
	return LocalSet(ctx, engine, ps, principal, account, region, opts)
}

// LocalSet is Local over a policy set already built.
func LocalSet(ctx context.Context, engine *policycheck.Engine, ps *policycheck.PolicySet, principal, account, region string, opts LocalOptions) (SourceResult, *policycheck.Decision, *policycheck.Scope) {
	d, err := engine.Evaluate(ctx, ps, policycheck.DescribeInstancesRequest(principal, account, region))
	if err != nil {
		return unknownLocal(fmt.Sprintf("evaluating ec2:DescribeInstances for %s", principal), err), nil, nil
	}
	sr := SourceResult{Source: SourceLocal, Decision: d.Result, Reason: d.Summary()}
	if !opts.Scope || !d.IsAllowed() {
		return sr, &d, nil
	}
	scope, err := engine.CredentialScope(ctx, ps, principal, account)
	if err != nil {
		return sr, &d, nil // the decision stands; the scope is only unmeasured
	}
	return sr, &d, &scope
}

// LocalFailure is the local source's unknown answer when the policies could not be had or read:
// what failed, and err.
func LocalFailure(what string, err error) SourceResult { return unknownLocal(what, err) }

// unknownLocal words an engine error; a size limit names itself (POLICY_SET_TOO_LARGE,
// PATTERN_TOO_LONG), so the reader knows the engine refused rather than failed.
func unknownLocal(what string, err error) SourceResult {
	var limit *policycheck.LimitError
	if errors.As(err, &limit) {
		return SourceResult{Source: SourceLocal, Decision: DecisionUnknown,
			Reason: fmt.Sprintf("%s: over ec2guard's size limit %s: %s", what, limit.Code, limit.Message)}
	}
	return SourceResult{Source: SourceLocal, Decision: DecisionUnknown, Reason: fmt.Sprintf("%s: %v", what, err)}
}
