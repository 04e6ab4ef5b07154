// Package collect gathers what decides an AWS principal's access — its IAM
// policy documents, collected per principal or from an account snapshot —
// and asks AWS's own decision sources (iam:SimulatePrincipalPolicy and an
// ec2:DescribeInstances dry run). The evaluation of collected documents (the
// "local" source) belongs to the IAM engine; this package only exposes the
// raw documents with their origin.
package collect

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
)

// PolicyType says how a document applies to the principal.
type PolicyType string

// Policy types.
const (
	Inline              PolicyType = "inline"
	Managed             PolicyType = "managed"
	PermissionsBoundary PolicyType = "permissions-boundary"
	Trust               PolicyType = "trust"
)

// Origin says where a policy document came from.
type Origin struct {
	Type PolicyType `json:"type"`
	// AttachedTo is the entity the policy is embedded in or attached to:
	// "user/NAME", "group/NAME" or "role/NAME".
	AttachedTo string `json:"attachedTo"`
	// Name is the inline policy name or the managed policy name.
	Name string `json:"name,omitempty"`
	// PolicyARN and VersionID identify a managed policy (or boundary) at its
	// default version.
	PolicyARN string `json:"policyArn,omitempty"`
	VersionID string `json:"versionId,omitempty"`
}

// String describes the origin for messages, e.g. `managed policy
// arn:aws:iam::1:policy/p (v2) attached to group/devs`.
func (o Origin) String() string {
	switch o.Type {
	case Inline:
		return fmt.Sprintf("inline policy %s of %s", o.Name, o.AttachedTo)
	case Managed:
		return fmt.Sprintf("managed policy %s (%s) attached to %s", o.PolicyARN, o.VersionID, o.AttachedTo)
	case PermissionsBoundary:
		return fmt.Sprintf("permissions boundary %s (%s) of %s", o.PolicyARN, o.VersionID, o.AttachedTo)
	case Trust:
		return fmt.Sprintf("trust policy of %s", o.AttachedTo)
	}
	return fmt.Sprintf("%s policy of %s", o.Type, o.AttachedTo)
}

// Document is one policy document, URL-decoded JSON as written.
type Document struct {
	Origin Origin `json:"origin"`
	JSON   string `json:"json"`
}

// Strategies and identities that read IAM.
const (
	StrategyPerPrincipal    = "per-principal"
	StrategyAccountSnapshot = "account-snapshot"

	ReadWithUpstream = "upstream"
	ReadWithAuditor  = "auditor"
)

// Policies is everything collected for one principal.
type Policies struct {
	// Principal is the IAM ARN as IAM reports it (a role's ARN with its path).
	Principal string `json:"principal"`
	// PrincipalType is "user" or "role".
	PrincipalType string `json:"principalType"`
	Account       string `json:"account"`
	// Groups are the user's group names.
	Groups []string `json:"groups,omitempty"`
	// Identity are the identity-based policies: inline and managed policies
	// of the principal and, for a user, of its groups.
	Identity []Document `json:"identity"`
	// PermissionsBoundary is nil when the principal has none.
	PermissionsBoundary *Document `json:"permissionsBoundary,omitempty"`
	// TrustPolicy is the role's trust (assume-role) policy; nil for users.
	TrustPolicy *Document `json:"trustPolicy,omitempty"`
	// Strategy is StrategyPerPrincipal or StrategyAccountSnapshot.
	Strategy string `json:"strategy"`
	// ReadWith is ReadWithUpstream or ReadWithAuditor.
	ReadWith string `json:"readWith"`
	// Notes explain how the policies were read (fallbacks, snapshot age).
	Notes       []string  `json:"notes,omitempty"`
	CollectedAt time.Time `json:"collectedAt"`
}

// All returns every document: identity policies, then the boundary, then
// the trust policy.
func (p *Policies) All() []Document {
	out := append([]Document(nil), p.Identity...)
	if p.PermissionsBoundary != nil {
		out = append(out, *p.PermissionsBoundary)
	}
	if p.TrustPolicy != nil {
		out = append(out, *p.TrustPolicy)
	}
	return out
}

// clone returns a deep-enough copy for handing out of a cache.
func (p *Policies) clone() *Policies {
	c := *p
	c.Groups = append([]string(nil), p.Groups...)
	c.Identity = append([]Document(nil), p.Identity...)
	c.Notes = append([]string(nil), p.Notes...)
	if p.PermissionsBoundary != nil {
		b := *p.PermissionsBoundary
		c.PermissionsBoundary = &b
	}
	if p.TrustPolicy != nil {
		t := *p.TrustPolicy
		c.TrustPolicy = &t
	}
	return &c
}

// principalRef is a user or role named by an IAM ARN.
type principalRef struct {
	arn       string
	partition string
	account   string
	kind      string // "user" or "role"
	name      string
}

// parsePrincipal accepts an IAM user or role ARN (an assumed-role STS ARN is
// mapped to its role by awsclients.ParseCallerARN before it gets here).
func parsePrincipal(s string) (principalRef, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return principalRef{}, fmt.Errorf("principal %q is not an ARN: %w", s, err)
	}
	kind, rest, _ := strings.Cut(a.Resource, "/")
	if a.Service != "iam" || (kind != "user" && kind != "role") || rest == "" {
		return principalRef{}, fmt.Errorf("principal %q: policies can be collected for IAM users and roles only (arn:PARTITION:iam::ACCOUNT:user/NAME or role/NAME)", s)
	}
	return principalRef{arn: s, partition: a.Partition, account: a.AccountID, kind: kind, name: rest[strings.LastIndex(rest, "/")+1:]}, nil
}

// decodeDocument URL-decodes a policy document as IAM returns it. A document
// that is already JSON (some emulators do not encode) is returned as is.
func decodeDocument(doc, what string) (string, error) {
	if t := strings.TrimSpace(doc); strings.HasPrefix(t, "{") {
		return doc, nil
	}
	out, err := url.PathUnescape(doc)
	if err != nil {
		return "", fmt.Errorf("%s: policy document is not URL-encoded JSON: %w", what, err)
	}
	return out, nil
}

// IAMAPI is the part of *iam.Client policy collection calls; callers may
// fake it.
type IAMAPI interface {
	GetUser(context.Context, *iam.GetUserInput, ...func(*iam.Options)) (*iam.GetUserOutput, error)
	ListUserPolicies(context.Context, *iam.ListUserPoliciesInput, ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error)
	GetUserPolicy(context.Context, *iam.GetUserPolicyInput, ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	ListAttachedUserPolicies(context.Context, *iam.ListAttachedUserPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	ListGroupsForUser(context.Context, *iam.ListGroupsForUserInput, ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)
	ListGroupPolicies(context.Context, *iam.ListGroupPoliciesInput, ...func(*iam.Options)) (*iam.ListGroupPoliciesOutput, error)
	GetGroupPolicy(context.Context, *iam.GetGroupPolicyInput, ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error)
	ListAttachedGroupPolicies(context.Context, *iam.ListAttachedGroupPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedGroupPoliciesOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
}

// SnapshotAPI is the part of *iam.Client the account snapshot calls.
type SnapshotAPI interface {
	GetAccountAuthorizationDetails(context.Context, *iam.GetAccountAuthorizationDetailsInput, ...func(*iam.Options)) (*iam.GetAccountAuthorizationDetailsOutput, error)
}

// SimulateAPI is the part of *iam.Client the aws-simulator source calls.
type SimulateAPI interface {
	SimulatePrincipalPolicy(context.Context, *iam.SimulatePrincipalPolicyInput, ...func(*iam.Options)) (*iam.SimulatePrincipalPolicyOutput, error)
}

var (
	_ IAMAPI      = (*iam.Client)(nil)
	_ SnapshotAPI = (*iam.Client)(nil)
	_ SimulateAPI = (*iam.Client)(nil)
)

// accessDeniedCodes mean the identity may not make the call.
var accessDeniedCodes = map[string]bool{
	"AccessDenied":          true,
	"AccessDeniedException": true,
	"UnauthorizedOperation": true,
}

// AccessDeniedError says the identity that reads IAM may not make a call.
type AccessDeniedError struct {
	// Reader describes the identity: "secret ns/name", "the auditor identity".
	Reader string
	// API is the call that was denied, e.g. iam:GetUser.
	API string
	Err error
}

func (e *AccessDeniedError) Error() string {
	return fmt.Sprintf("%s may not read IAM (%s: AccessDenied)", e.Reader, e.API)
}

func (e *AccessDeniedError) Unwrap() error { return e.Err }

// NotFoundError says the principal (or one of its policies) does not exist
// where it was looked up.
type NotFoundError struct {
	Principal string
	Where     string
	Err       error
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("principal %s not found in %s", e.Principal, e.Where)
}

func (e *NotFoundError) Unwrap() error { return e.Err }

// IsAccessDenied reports whether err is an AWS access denial.
func IsAccessDenied(err error) bool {
	var ad *AccessDeniedError
	if errors.As(err, &ad) {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && accessDeniedCodes[apiErr.ErrorCode()]
}

func isNoSuchEntity(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchEntity"
}
