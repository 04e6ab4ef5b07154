package collect

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// Fetcher reads the policies of one IAM user or role, named by its IAM ARN.
type Fetcher interface {
	Fetch(ctx context.Context, principalARN string) (*Policies, error)
}

// PerPrincipal collects with per-principal IAM calls (GetUser/GetRole, the
// List*Policies and Get*Policy calls, GetPolicy + GetPolicyVersion for each
// managed policy at its default version).
type PerPrincipal struct {
	client IAMAPI
	// reader describes the identity behind client for error messages.
	reader string
}

// NewPerPrincipal returns a Fetcher over client; reader describes the
// identity behind it ("secret ns/name", "the auditor identity").
func NewPerPrincipal(client IAMAPI, reader string) *PerPrincipal {
	return &PerPrincipal{client: client, reader: reader}
}

// Fetch implements Fetcher. A denied call gives *AccessDeniedError naming the
// call, an unknown principal *NotFoundError.
func (f *PerPrincipal) Fetch(ctx context.Context, principalARN string) (*Policies, error) {
	ref, err := parsePrincipal(principalARN)
	if err != nil {
		return nil, err
	}
	r := &perRun{f: f, ctx: ctx, managed: map[string]managedDoc{}}
	var pol *Policies
	if ref.kind == "user" {
		pol, err = r.user(ref)
	} else {
		pol, err = r.role(ref)
	}
	if err != nil {
		return nil, err
	}
	pol.Strategy = StrategyPerPrincipal
	pol.CollectedAt = time.Now()
	return pol, nil
}

// perRun is one Fetch: it remembers managed policies already read.
type perRun struct {
	f       *PerPrincipal
	ctx     context.Context
	managed map[string]managedDoc
}

type managedDoc struct {
	name, version, json string
}

// wrap turns a call's error into a typed one naming the call.
func (r *perRun) wrap(api, principal string, err error) error {
	switch {
	case IsAccessDenied(err):
		return &AccessDeniedError{Reader: r.f.reader, API: api, Err: err}
	case isNoSuchEntity(err):
		return &NotFoundError{Principal: principal, Where: "IAM (" + api + ")", Err: err}
	}
	return fmt.Errorf("%s for %s: %w", api, principal, err)
}

// newPolicies starts the result for a principal; arn is what IAM answered (ref's ARN when empty).
func newPolicies(ref principalRef, arn, principalType string) *Policies {
	if arn == "" {
		arn = ref.arn
	}
	return &Policies{Principal: arn, PrincipalType: principalType, Account: ref.account}
}

// boundary reads the permissions boundary b of the entity self at its default version (nil: none).
func (r *perRun) boundary(b *iamtypes.AttachedPermissionsBoundary, ref principalRef, self string) (*Document, error) {
	if b == nil {
		return nil, nil
	}
	d, err := r.managedDocument(aws.ToString(b.PermissionsBoundaryArn), ref.arn, PermissionsBoundary, self)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func (r *perRun) user(ref principalRef) (*Policies, error) {
	out, err := r.f.client.GetUser(r.ctx, &iam.GetUserInput{UserName: aws.String(ref.name)})
	if err != nil {
		return nil, r.wrap("iam:GetUser", ref.arn, err)
	}
	self := "user/" + ref.name
	pol := newPolicies(ref, aws.ToString(out.User.Arn), "user")
	if pol.Identity, err = r.entityPolicies(ref.arn, self, r.userCalls(ref.name)); err != nil {
		return nil, err
	}

	groups, err := r.groups(ref)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		pol.Groups = append(pol.Groups, g)
		docs, err := r.entityPolicies(ref.arn, "group/"+g, r.groupCalls(g))
		if err != nil {
			return nil, err
		}
		pol.Identity = append(pol.Identity, docs...)
	}
	if pol.PermissionsBoundary, err = r.boundary(out.User.PermissionsBoundary, ref, self); err != nil {
		return nil, err
	}
	return pol, nil
}

// entityCalls are the IAM calls that list and read the policies of one user, group or role.
type entityCalls struct {
	kind         string // "User", "Group" or "Role", as in the API names
	listInline   func(marker *string) (names []string, next *string, err error)
	getInline    func(name string) (document string, err error)
	listAttached func(marker *string) (policies []iamtypes.AttachedPolicy, next *string, err error)
}

// entityPolicies reads an entity's inline policies and its attached managed policies (self names
// the entity in explanations, e.g. "group/admins").
func (r *perRun) entityPolicies(principal, self string, c entityCalls) ([]Document, error) {
	docs, err := r.inline(principal, self, "iam:List"+c.kind+"Policies", "iam:Get"+c.kind+"Policy", c.listInline, c.getInline)
	if err != nil {
		return nil, err
	}
	attached, err := r.attached("iam:ListAttached"+c.kind+"Policies", principal, c.listAttached, self)
	if err != nil {
		return nil, err
	}
	return append(docs, attached...), nil
}

func (r *perRun) userCalls(name string) entityCalls {
	return entityCalls{
		kind: "User",
		listInline: func(marker *string) ([]string, *string, error) {
			o, err := r.f.client.ListUserPolicies(r.ctx, &iam.ListUserPoliciesInput{UserName: aws.String(name), Marker: marker})
			if err != nil {
				return nil, nil, err
			}
			return o.PolicyNames, nextMarker(o.IsTruncated, o.Marker), nil
		},
		getInline: func(policy string) (string, error) {
			o, err := r.f.client.GetUserPolicy(r.ctx, &iam.GetUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String(policy)})
			if err != nil {
				return "", err
			}
			return aws.ToString(o.PolicyDocument), nil
		},
		listAttached: func(marker *string) ([]iamtypes.AttachedPolicy, *string, error) {
			o, err := r.f.client.ListAttachedUserPolicies(r.ctx, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(name), Marker: marker})
			if err != nil {
				return nil, nil, err
			}
			return o.AttachedPolicies, nextMarker(o.IsTruncated, o.Marker), nil
		},
	}
}

func (r *perRun) groupCalls(name string) entityCalls {
	return entityCalls{
		kind: "Group",
		listInline: func(marker *string) ([]string, *string, error) {
			o, err := r.f.client.ListGroupPolicies(r.ctx, &iam.ListGroupPoliciesInput{GroupName: aws.String(name), Marker: marker})
			if err != nil {
				return nil, nil, err
			}
			return o.PolicyNames, nextMarker(o.IsTruncated, o.Marker), nil
		},
		getInline: func(policy string) (string, error) {
			o, err := r.f.client.GetGroupPolicy(r.ctx, &iam.GetGroupPolicyInput{GroupName: aws.String(name), PolicyName: aws.String(policy)})
			if err != nil {
				return "", err
			}
			return aws.ToString(o.PolicyDocument), nil
		},
		listAttached: func(marker *string) ([]iamtypes.AttachedPolicy, *string, error) {
			o, err := r.f.client.ListAttachedGroupPolicies(r.ctx, &iam.ListAttachedGroupPoliciesInput{GroupName: aws.String(name), Marker: marker})
			if err != nil {
				return nil, nil, err
			}
			return o.AttachedPolicies, nextMarker(o.IsTruncated, o.Marker), nil
		},
	}
}

func (r *perRun) roleCalls(name string) entityCalls {
	return entityCalls{
		kind: "Role",
		listInline: func(marker *string) ([]string, *string, error) {
			o, err := r.f.client.ListRolePolicies(r.ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(name), Marker: marker})
			if err != nil {
				return nil, nil, err
			}
			return o.PolicyNames, nextMarker(o.IsTruncated, o.Marker), nil
		},
		getInline: func(policy string) (string, error) {
			o, err := r.f.client.GetRolePolicy(r.ctx, &iam.GetRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(policy)})
			if err != nil {
				return "", err
			}
			return aws.ToString(o.PolicyDocument), nil
		},
		listAttached: func(marker *string) ([]iamtypes.AttachedPolicy, *string, error) {
			o, err := r.f.client.ListAttachedRolePolicies(r.ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(name), Marker: marker})
			if err != nil {
				return nil, nil, err
			}
			return o.AttachedPolicies, nextMarker(o.IsTruncated, o.Marker), nil
		},
	}
}

// inline lists an entity's inline policy names page by page (list) and reads each document (get).
func (r *perRun) inline(principal, attachedTo, listAPI, getAPI string,
	list func(marker *string) (names []string, next *string, err error),
	get func(name string) (document string, err error)) ([]Document, error) {
	var names []string
	var marker *string
	for {
		page, next, err := list(marker)
		if err != nil {
			return nil, r.wrap(listAPI, principal, err)
		}
		names = append(names, page...)
		if marker = next; marker == nil {
			break
		}
	}
	docs := make([]Document, 0, len(names))
	for _, n := range names {
		raw, err := get(n)
		if err != nil {
			return nil, r.wrap(getAPI, principal, err)
		}
		d, err := inlineDocument(raw, n, attachedTo)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

func (r *perRun) groups(ref principalRef) ([]string, error) {
	var names []string
	var marker *string
	for {
		o, err := r.f.client.ListGroupsForUser(r.ctx, &iam.ListGroupsForUserInput{UserName: aws.String(ref.name), Marker: marker})
		if err != nil {
			return nil, r.wrap("iam:ListGroupsForUser", ref.arn, err)
		}
		for _, g := range o.Groups {
			names = append(names, aws.ToString(g.GroupName))
		}
		if marker = nextMarker(o.IsTruncated, o.Marker); marker == nil {
			return names, nil
		}
	}
}

func (r *perRun) role(ref principalRef) (*Policies, error) {
	out, err := r.f.client.GetRole(r.ctx, &iam.GetRoleInput{RoleName: aws.String(ref.name)})
	if err != nil {
		return nil, r.wrap("iam:GetRole", ref.arn, err)
	}
	self := "role/" + ref.name
	pol := newPolicies(ref, aws.ToString(out.Role.Arn), "role")
	trust, err := decodeDocument(aws.ToString(out.Role.AssumeRolePolicyDocument), "trust policy of "+self)
	if err != nil {
		return nil, err
	}
	pol.TrustPolicy = &Document{Origin: Origin{Type: Trust, AttachedTo: self}, JSON: trust}

	if pol.Identity, err = r.entityPolicies(ref.arn, self, r.roleCalls(ref.name)); err != nil {
		return nil, err
	}
	if pol.PermissionsBoundary, err = r.boundary(out.Role.PermissionsBoundary, ref, self); err != nil {
		return nil, err
	}
	return pol, nil
}

// attached lists attached managed policies page by page and reads each at
// its default version.
func (r *perRun) attached(api, principal string, page func(marker *string) ([]iamtypes.AttachedPolicy, *string, error), attachedTo string) ([]Document, error) {
	var arns []string
	var marker *string
	for {
		ps, next, err := page(marker)
		if err != nil {
			return nil, r.wrap(api, principal, err)
		}
		for _, p := range ps {
			arns = append(arns, aws.ToString(p.PolicyArn))
		}
		if marker = next; marker == nil {
			break
		}
	}
	docs := make([]Document, 0, len(arns))
	for _, a := range arns {
		d, err := r.managedDocument(a, principal, Managed, attachedTo)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// managedDocument reads a managed policy at its default version (once per run).
func (r *perRun) managedDocument(policyARN, principal string, t PolicyType, attachedTo string) (Document, error) {
	m, ok := r.managed[policyARN]
	if !ok {
		p, err := r.f.client.GetPolicy(r.ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
		if err != nil {
			return Document{}, r.wrap("iam:GetPolicy "+policyARN, principal, err)
		}
		v := aws.ToString(p.Policy.DefaultVersionId)
		pv, err := r.f.client.GetPolicyVersion(r.ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: aws.String(v)})
		if err != nil {
			return Document{}, r.wrap("iam:GetPolicyVersion "+policyARN, principal, err)
		}
		doc, err := decodeDocument(aws.ToString(pv.PolicyVersion.Document), "managed policy "+policyARN)
		if err != nil {
			return Document{}, err
		}
		m = managedDoc{name: aws.ToString(p.Policy.PolicyName), version: v, json: doc}
		r.managed[policyARN] = m
	}
	return Document{
		Origin: Origin{Type: t, AttachedTo: attachedTo, Name: m.name, PolicyARN: policyARN, VersionID: m.version},
		JSON:   m.json,
	}, nil
}

func inlineDocument(raw, name, attachedTo string) (Document, error) {
	doc, err := decodeDocument(raw, "inline policy "+name+" of "+attachedTo)
	if err != nil {
		return Document{}, err
	}
	return Document{Origin: Origin{Type: Inline, AttachedTo: attachedTo, Name: name}, JSON: doc}, nil
}

func nextMarker(truncated bool, marker *string) *string {
	if !truncated || aws.ToString(marker) == "" {
		return nil
	}
	return marker
}
