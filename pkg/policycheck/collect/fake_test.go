package collect

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

const acct = "111122223333"

// fakeIAM is an in-memory IAM account implementing IAMAPI and SnapshotAPI.
// Documents are stored URL-encoded, as IAM returns them. List calls return
// one item per page, to exercise marker handling.
type fakeIAM struct {
	mu       sync.Mutex
	users    map[string]*fakeUser
	groups   map[string]*fakeGroup
	roles    map[string]*fakeRole
	policies map[string]*fakePolicy // by ARN
	deny     map[string]bool        // method name -> AccessDenied
	calls    map[string]int
	// gate, when set, holds GetUser and GetRole until closed.
	gate chan struct{}
}

type fakeUser struct {
	path     string
	inline   map[string]string
	attached []string
	groups   []string
	boundary string
}

type fakeGroup struct {
	inline   map[string]string
	attached []string
}

type fakeRole struct {
	path     string
	trust    string
	inline   map[string]string
	attached []string
	boundary string
}

type fakePolicy struct {
	name     string
	def      string
	versions map[string]string
}

func newFakeIAM() *fakeIAM {
	return &fakeIAM{users: map[string]*fakeUser{}, groups: map[string]*fakeGroup{}, roles: map[string]*fakeRole{},
		policies: map[string]*fakePolicy{}, deny: map[string]bool{}, calls: map[string]int{}}
}

func enc(doc string) *string { return aws.String(url.PathEscape(doc)) }

func policyARN(name string) string { return "arn:aws:iam::" + acct + ":policy/" + name }

func (f *fakeIAM) addPolicy(name, def string, versions map[string]string) string {
	f.policies[policyARN(name)] = &fakePolicy{name: name, def: def, versions: versions}
	return policyARN(name)
}

func (f *fakeIAM) call(ctx context.Context, name string) error {
	f.mu.Lock()
	f.calls[name]++
	denied := f.deny[name]
	gate := f.gate
	f.mu.Unlock()
	if gate != nil && (name == "GetUser" || name == "GetRole") {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if denied {
		return &smithy.GenericAPIError{Code: "AccessDenied", Message: "User is not authorized to perform: iam:" + name}
	}
	return nil
}

func (f *fakeIAM) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

func (f *fakeIAM) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func noSuch(what string) error {
	return &smithy.GenericAPIError{Code: "NoSuchEntity", Message: what + " cannot be found"}
}

// page returns the item at marker (an index) and the next marker.
func page[T any](items []T, marker *string) ([]T, bool, *string) {
	i := 0
	if marker != nil {
		i, _ = strconv.Atoi(*marker)
	}
	if i >= len(items) {
		return nil, false, nil
	}
	if i+1 < len(items) {
		return items[i : i+1], true, aws.String(strconv.Itoa(i + 1))
	}
	return items[i : i+1], false, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func attachedList(arns []string) []iamtypes.AttachedPolicy {
	out := make([]iamtypes.AttachedPolicy, 0, len(arns))
	for _, a := range arns {
		out = append(out, iamtypes.AttachedPolicy{PolicyArn: aws.String(a), PolicyName: aws.String(a[strings.LastIndex(a, "/")+1:])})
	}
	return out
}

func boundaryOf(arn string) *iamtypes.AttachedPermissionsBoundary {
	if arn == "" {
		return nil
	}
	return &iamtypes.AttachedPermissionsBoundary{PermissionsBoundaryArn: aws.String(arn), PermissionsBoundaryType: iamtypes.PermissionsBoundaryAttachmentTypePolicy}
}

func userARN(path, name string) string { return "arn:aws:iam::" + acct + ":user" + path + name }
func roleARN(path, name string) string { return "arn:aws:iam::" + acct + ":role" + path + name }

func (f *fakeIAM) GetUser(ctx context.Context, in *iam.GetUserInput, _ ...func(*iam.Options)) (*iam.GetUserOutput, error) {
	if err := f.call(ctx, "GetUser"); err != nil {
		return nil, err
	}
	u, ok := f.users[*in.UserName]
	if !ok {
		return nil, noSuch("user " + *in.UserName)
	}
	return &iam.GetUserOutput{User: &iamtypes.User{UserName: in.UserName, Arn: aws.String(userARN(u.path, *in.UserName)), Path: aws.String(u.path), PermissionsBoundary: boundaryOf(u.boundary)}}, nil
}

func (f *fakeIAM) ListUserPolicies(ctx context.Context, in *iam.ListUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListUserPoliciesOutput, error) {
	if err := f.call(ctx, "ListUserPolicies"); err != nil {
		return nil, err
	}
	items, trunc, next := page(sortedKeys(f.users[*in.UserName].inline), in.Marker)
	return &iam.ListUserPoliciesOutput{PolicyNames: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, _ ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error) {
	if err := f.call(ctx, "GetUserPolicy"); err != nil {
		return nil, err
	}
	return &iam.GetUserPolicyOutput{PolicyName: in.PolicyName, PolicyDocument: enc(f.users[*in.UserName].inline[*in.PolicyName])}, nil
}

func (f *fakeIAM) ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error) {
	if err := f.call(ctx, "ListAttachedUserPolicies"); err != nil {
		return nil, err
	}
	items, trunc, next := page(attachedList(f.users[*in.UserName].attached), in.Marker)
	return &iam.ListAttachedUserPoliciesOutput{AttachedPolicies: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, _ ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error) {
	if err := f.call(ctx, "ListGroupsForUser"); err != nil {
		return nil, err
	}
	var gs []iamtypes.Group
	for _, g := range f.users[*in.UserName].groups {
		gs = append(gs, iamtypes.Group{GroupName: aws.String(g)})
	}
	items, trunc, next := page(gs, in.Marker)
	return &iam.ListGroupsForUserOutput{Groups: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) ListGroupPolicies(ctx context.Context, in *iam.ListGroupPoliciesInput, _ ...func(*iam.Options)) (*iam.ListGroupPoliciesOutput, error) {
	if err := f.call(ctx, "ListGroupPolicies"); err != nil {
		return nil, err
	}
	items, trunc, next := page(sortedKeys(f.groups[*in.GroupName].inline), in.Marker)
	return &iam.ListGroupPoliciesOutput{PolicyNames: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) GetGroupPolicy(ctx context.Context, in *iam.GetGroupPolicyInput, _ ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error) {
	if err := f.call(ctx, "GetGroupPolicy"); err != nil {
		return nil, err
	}
	return &iam.GetGroupPolicyOutput{PolicyName: in.PolicyName, PolicyDocument: enc(f.groups[*in.GroupName].inline[*in.PolicyName])}, nil
}

func (f *fakeIAM) ListAttachedGroupPolicies(ctx context.Context, in *iam.ListAttachedGroupPoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedGroupPoliciesOutput, error) {
	if err := f.call(ctx, "ListAttachedGroupPolicies"); err != nil {
		return nil, err
	}
	items, trunc, next := page(attachedList(f.groups[*in.GroupName].attached), in.Marker)
	return &iam.ListAttachedGroupPoliciesOutput{AttachedPolicies: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) GetRole(ctx context.Context, in *iam.GetRoleInput, _ ...func(*iam.Options)) (*iam.GetRoleOutput, error) {
	if err := f.call(ctx, "GetRole"); err != nil {
		return nil, err
	}
	r, ok := f.roles[*in.RoleName]
	if !ok {
		return nil, noSuch("role " + *in.RoleName)
	}
	return &iam.GetRoleOutput{Role: &iamtypes.Role{RoleName: in.RoleName, Arn: aws.String(roleARN(r.path, *in.RoleName)), Path: aws.String(r.path),
		AssumeRolePolicyDocument: enc(r.trust), PermissionsBoundary: boundaryOf(r.boundary)}}, nil
}

func (f *fakeIAM) ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error) {
	if err := f.call(ctx, "ListRolePolicies"); err != nil {
		return nil, err
	}
	items, trunc, next := page(sortedKeys(f.roles[*in.RoleName].inline), in.Marker)
	return &iam.ListRolePoliciesOutput{PolicyNames: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, _ ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error) {
	if err := f.call(ctx, "GetRolePolicy"); err != nil {
		return nil, err
	}
	return &iam.GetRolePolicyOutput{PolicyName: in.PolicyName, PolicyDocument: enc(f.roles[*in.RoleName].inline[*in.PolicyName])}, nil
}

func (f *fakeIAM) ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, _ ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error) {
	if err := f.call(ctx, "ListAttachedRolePolicies"); err != nil {
		return nil, err
	}
	items, trunc, next := page(attachedList(f.roles[*in.RoleName].attached), in.Marker)
	return &iam.ListAttachedRolePoliciesOutput{AttachedPolicies: items, IsTruncated: trunc, Marker: next}, nil
}

func (f *fakeIAM) GetPolicy(ctx context.Context, in *iam.GetPolicyInput, _ ...func(*iam.Options)) (*iam.GetPolicyOutput, error) {
	if err := f.call(ctx, "GetPolicy"); err != nil {
		return nil, err
	}
	p, ok := f.policies[*in.PolicyArn]
	if !ok {
		return nil, noSuch("policy " + *in.PolicyArn)
	}
	return &iam.GetPolicyOutput{Policy: &iamtypes.Policy{Arn: in.PolicyArn, PolicyName: aws.String(p.name), DefaultVersionId: aws.String(p.def)}}, nil
}

func (f *fakeIAM) GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, _ ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error) {
	if err := f.call(ctx, "GetPolicyVersion"); err != nil {
		return nil, err
	}
	p := f.policies[*in.PolicyArn]
	doc, ok := p.versions[*in.VersionId]
	if !ok {
		return nil, noSuch(fmt.Sprintf("version %s of %s", *in.VersionId, *in.PolicyArn))
	}
	return &iam.GetPolicyVersionOutput{PolicyVersion: &iamtypes.PolicyVersion{VersionId: in.VersionId, Document: enc(doc), IsDefaultVersion: *in.VersionId == p.def}}, nil
}

// GetAccountAuthorizationDetails returns users, groups, roles and policies,
// one kind per page.
func (f *fakeIAM) GetAccountAuthorizationDetails(ctx context.Context, in *iam.GetAccountAuthorizationDetailsInput, _ ...func(*iam.Options)) (*iam.GetAccountAuthorizationDetailsOutput, error) {
	if err := f.call(ctx, "GetAccountAuthorizationDetails"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	inline := func(m map[string]string) []iamtypes.PolicyDetail {
		var out []iamtypes.PolicyDetail
		for _, n := range sortedKeys(m) {
			out = append(out, iamtypes.PolicyDetail{PolicyName: aws.String(n), PolicyDocument: enc(m[n])})
		}
		return out
	}
	out := &iam.GetAccountAuthorizationDetailsOutput{}
	switch aws.ToString(in.Marker) {
	case "":
		for name, u := range f.users {
			out.UserDetailList = append(out.UserDetailList, iamtypes.UserDetail{UserName: aws.String(name), Arn: aws.String(userARN(u.path, name)),
				UserPolicyList: inline(u.inline), AttachedManagedPolicies: attachedList(u.attached), GroupList: u.groups, PermissionsBoundary: boundaryOf(u.boundary)})
		}
		out.IsTruncated, out.Marker = true, aws.String("groups")
	case "groups":
		for name, g := range f.groups {
			out.GroupDetailList = append(out.GroupDetailList, iamtypes.GroupDetail{GroupName: aws.String(name), Arn: aws.String("arn:aws:iam::" + acct + ":group/" + name),
				GroupPolicyList: inline(g.inline), AttachedManagedPolicies: attachedList(g.attached)})
		}
		out.IsTruncated, out.Marker = true, aws.String("roles")
	case "roles":
		for name, r := range f.roles {
			out.RoleDetailList = append(out.RoleDetailList, iamtypes.RoleDetail{RoleName: aws.String(name), Arn: aws.String(roleARN(r.path, name)),
				AssumeRolePolicyDocument: enc(r.trust), RolePolicyList: inline(r.inline), AttachedManagedPolicies: attachedList(r.attached), PermissionsBoundary: boundaryOf(r.boundary)})
		}
		out.IsTruncated, out.Marker = true, aws.String("policies")
	case "policies":
		for a, p := range f.policies {
			d := iamtypes.ManagedPolicyDetail{Arn: aws.String(a), PolicyName: aws.String(p.name), DefaultVersionId: aws.String(p.def)}
			for v, doc := range p.versions {
				d.PolicyVersionList = append(d.PolicyVersionList, iamtypes.PolicyVersion{VersionId: aws.String(v), Document: enc(doc), IsDefaultVersion: v == p.def})
			}
			out.Policies = append(out.Policies, d)
		}
	}
	return out, nil
}

// Documents used by the tests.
const (
	docUserInlineA  = `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}`
	docUserInlineB  = `{"Version":"2012-10-17","Statement":[{"Sid":"B","Effect":"Deny","Action":"s3:*","Resource":"*"}]}`
	docManagedV1    = `{"Version":"2012-10-17","Statement":[{"Sid":"Old","Effect":"Allow","Action":"*","Resource":"*"}]}`
	docManagedV2    = `{"Version":"2012-10-17","Statement":[{"Sid":"Current","Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`
	docGroupInline  = `{"Version":"2012-10-17","Statement":[{"Sid":"G","Effect":"Allow","Action":"ec2:DescribeTags","Resource":"*"}]}`
	docGroupManaged = `{"Version":"2012-10-17","Statement":[{"Sid":"GM","Effect":"Allow","Action":"ec2:DescribeRegions","Resource":"*"}]}`
	docBoundary     = `{"Version":"2012-10-17","Statement":[{"Sid":"Bound","Effect":"Allow","Action":"ec2:*","Resource":"*"}]}`
	docTrust        = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/gloo"},"Action":"sts:AssumeRole"}]}`
	docRoleInline   = `{"Version":"2012-10-17","Statement":[{"Sid":"R","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`
)

// seededIAM is an account with user gloo (path /team/, two inline policies,
// managed policy at v2, group devs with an inline and a managed policy, a
// boundary) and role reader (path /svc/, trust policy, inline and managed).
func seededIAM() *fakeIAM {
	f := newFakeIAM()
	m := f.addPolicy("describe", "v2", map[string]string{"v1": docManagedV1, "v2": docManagedV2})
	gm := f.addPolicy("group-managed", "v1", map[string]string{"v1": docGroupManaged})
	b := f.addPolicy("boundary", "v1", map[string]string{"v1": docBoundary})
	f.users["gloo"] = &fakeUser{path: "/team/", inline: map[string]string{"a": docUserInlineA, "b": docUserInlineB},
		attached: []string{m}, groups: []string{"devs"}, boundary: b}
	f.groups["devs"] = &fakeGroup{inline: map[string]string{"g": docGroupInline}, attached: []string{gm, m}}
	f.roles["reader"] = &fakeRole{path: "/svc/", trust: docTrust, inline: map[string]string{"r": docRoleInline}, attached: []string{m}}
	return f
}
