package policycheck

import (
	"context"
	"fmt"
)

// ConsistencyClass is how an EC2 Upstream's credentials and filters relate (docs/iam-semantics.md "Consistency
// classes"); it becomes the ec2guard.io/consistency annotation.
type ConsistencyClass string

// The five classes.
const (
	CredentialsDeny                         ConsistencyClass = "credentials-deny"
	PermissiveCredentialsDiscerningFilters  ConsistencyClass = "permissive-credentials-discerning-filters"
	RestrictiveCredentialsNoFilters         ConsistencyClass = "restrictive-credentials-no-filters"
	RestrictiveCredentialsDiscerningFilters ConsistencyClass = "restrictive-credentials-discerning-filters"
	PermissiveCredentialsNoFilters          ConsistencyClass = "permissive-credentials-no-filters"
)

// Scope says what limits the credentials besides the filters. ec2:DescribeInstances supports no
// resource-level permissions and no tag conditions, so IAM can only narrow what the credentials
// see by account or by region — and discovery only ever lists the Upstream's own region, so a
// region pin that allows that region narrows nothing the Upstream routes to. What is left:
//   - DedicatedAccount: the credentials belong to an account that holds only the instances meant
//     for this Upstream — the secret owner's statement (the ec2guard.io/dedicated-account
//     annotation on the Secret; pkg/verdict sets it), since nothing in IAM can show it;
//   - RegionPinned is recorded for the report (the policy pins DescribeInstances to regions, see
//     CredentialScope) but does not make the credentials restrictive.
type Scope struct {
	RegionPinned     bool `json:"regionPinned"`
	DedicatedAccount bool `json:"dedicatedAccount"`
}

// Restrictive reports whether the credentials alone bound what the Upstream routes to.
func (s Scope) Restrictive() bool { return s.DedicatedAccount }

// Classify puts an Upstream into its consistency class. It needs:
//   - the IAM decision for ec2:DescribeInstances in the Upstream's region (anything but allowed
//     means the credentials cannot list instances: credentials-deny);
//   - hasFilters: whether the Upstream has at least one filter;
//   - scope: whether the credentials are restricted by region or account (see Scope).
func Classify(d Decision, hasFilters bool, scope Scope) ConsistencyClass {
	switch {
	case !d.IsAllowed():
		return CredentialsDeny
	case scope.Restrictive() && hasFilters:
		return RestrictiveCredentialsDiscerningFilters
	case scope.Restrictive():
		return RestrictiveCredentialsNoFilters
	case hasFilters:
		return PermissiveCredentialsDiscerningFilters
	default:
		return PermissiveCredentialsNoFilters
	}
}

// probeRegion is a region name no policy can have listed; a policy that allows the Upstream's
// region but not this one is pinned to regions.
const probeRegion = "zz-ec2guard-probe-1"

// CredentialScope measures whether the policy set pins DescribeInstances to regions: it evaluates
// the same request for a region no policy names. (DedicatedAccount is not IAM's to measure.)
func (e *Engine) CredentialScope(ctx context.Context, ps *PolicySet, principalARN, account string) (Scope, error) {
	probe, err := e.Evaluate(ctx, ps, DescribeInstancesRequest(principalARN, account, probeRegion))
	if err != nil {
		return Scope{}, fmt.Errorf("probing region pinning: %w", err)
	}
	return Scope{RegionPinned: !probe.IsAllowed()}, nil
}

// OfflinePrincipal stands for the Upstream's principal when policies are checked offline and the
// real principal is unknown (ec2guard check --policy).
const OfflinePrincipal = "arn:aws:iam::111122223333:user/ec2guard-offline"
