package policycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// AccountSnapshot is the output of `aws iam get-account-authorization-details` (or the
// GetAccountAuthorizationDetails API, whose policy documents are URL-encoded), indexed so that a
// principal's policies can be collected offline.
type AccountSnapshot struct {
	users    map[string]*authUser  // by ARN
	roles    map[string]*authRole  // by ARN, and by "role/NAME" for assumed-role lookups
	groups   map[string]*authGroup // by name
	managed  map[string]NamedPolicy
	rawUsers []string
}

type authUser struct {
	arn      string
	inline   []NamedPolicy
	attached []string
	groups   []string
	boundary string
}

type authRole struct {
	arn      string
	name     string
	inline   []NamedPolicy
	attached []string
	boundary string
	trust    *NamedPolicy
}

type authGroup struct {
	inline   []NamedPolicy
	attached []string
}

// PrincipalPolicies are the policies IAM attaches to one principal.
type PrincipalPolicies struct {
	// Identity: inline and managed policies of the user or role, and of the user's groups.
	Identity []NamedPolicy
	// Boundary is the permissions boundary, if any.
	Boundary *NamedPolicy
	// Trust is a role's trust policy (a resource policy for sts:AssumeRole).
	Trust *NamedPolicy
}

// wire types of the CLI / API output.
type wireAuthDetails struct {
	UserDetailList []struct {
		Arn                     string
		UserName                string
		UserPolicyList          []wirePolicy
		GroupList               []string
		AttachedManagedPolicies []struct{ PolicyArn string }
		PermissionsBoundary     *struct{ PermissionsBoundaryArn string }
	}
	GroupDetailList []struct {
		GroupName               string
		GroupPolicyList         []wirePolicy
		AttachedManagedPolicies []struct{ PolicyArn string }
	}
	RoleDetailList []struct {
		Arn                      string
		RoleName                 string
		AssumeRolePolicyDocument json.RawMessage
		RolePolicyList           []wirePolicy
		AttachedManagedPolicies  []struct{ PolicyArn string }
		PermissionsBoundary      *struct{ PermissionsBoundaryArn string }
	}
	Policies []struct {
		Arn               string
		PolicyName        string
		DefaultVersionId  string
		PolicyVersionList []struct {
			Document         json.RawMessage
			VersionId        string
			IsDefaultVersion bool
		}
	}
}

type wirePolicy struct {
	PolicyName     string
	PolicyDocument json.RawMessage
}

// decodeDocument accepts a policy document as a JSON object or as a (URL-encoded) JSON string.
func decodeDocument(name string, raw json.RawMessage) (*Policy, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("policy %s: %w", name, err)
		}
		if !strings.HasPrefix(strings.TrimSpace(s), "{") {
			dec, err := url.QueryUnescape(s)
			if err != nil {
				return nil, fmt.Errorf("policy %s: document is neither JSON nor URL-encoded JSON: %w", name, err)
			}
			s = dec
		}
		raw = []byte(s)
	}
	return ParsePolicy(name, raw)
}

// ParseAuthorizationDetails reads the JSON of `aws iam get-account-authorization-details`.
func ParseAuthorizationDetails(data []byte) (*AccountSnapshot, error) {
	var w wireAuthDetails
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("authorization details: not the JSON of get-account-authorization-details: %w", err)
	}
	snap := &AccountSnapshot{
		users:   map[string]*authUser{},
		roles:   map[string]*authRole{},
		groups:  map[string]*authGroup{},
		managed: map[string]NamedPolicy{},
	}
	inline := func(owner string, list []wirePolicy) ([]NamedPolicy, error) {
		var out []NamedPolicy
		for _, p := range list {
			name := owner + "/" + p.PolicyName
			pol, err := decodeDocument(name, p.PolicyDocument)
			if err != nil {
				return nil, err
			}
			out = append(out, NamedPolicy{Name: name, Policy: pol})
		}
		return out, nil
	}
	for _, p := range w.Policies {
		for _, v := range p.PolicyVersionList {
			if !v.IsDefaultVersion && v.VersionId != p.DefaultVersionId {
				continue
			}
			pol, err := decodeDocument(p.PolicyName, v.Document)
			if err != nil {
				return nil, err
			}
			snap.managed[p.Arn] = NamedPolicy{Name: p.PolicyName, Policy: pol}
			break
		}
	}
	for _, g := range w.GroupDetailList {
		in, err := inline("group/"+g.GroupName, g.GroupPolicyList)
		if err != nil {
			return nil, err
		}
		ag := &authGroup{inline: in}
		for _, a := range g.AttachedManagedPolicies {
			ag.attached = append(ag.attached, a.PolicyArn)
		}
		snap.groups[g.GroupName] = ag
	}
	for _, u := range w.UserDetailList {
		in, err := inline("user/"+u.UserName, u.UserPolicyList)
		if err != nil {
			return nil, err
		}
		au := &authUser{arn: u.Arn, inline: in, groups: u.GroupList}
		for _, a := range u.AttachedManagedPolicies {
			au.attached = append(au.attached, a.PolicyArn)
		}
		if u.PermissionsBoundary != nil {
			au.boundary = u.PermissionsBoundary.PermissionsBoundaryArn
		}
		snap.users[u.Arn] = au
		snap.rawUsers = append(snap.rawUsers, u.Arn)
	}
	for _, r := range w.RoleDetailList {
		in, err := inline("role/"+r.RoleName, r.RolePolicyList)
		if err != nil {
			return nil, err
		}
		ar := &authRole{arn: r.Arn, name: r.RoleName, inline: in}
		for _, a := range r.AttachedManagedPolicies {
			ar.attached = append(ar.attached, a.PolicyArn)
		}
		if r.PermissionsBoundary != nil {
			ar.boundary = r.PermissionsBoundary.PermissionsBoundaryArn
		}
		if len(r.AssumeRolePolicyDocument) > 0 && string(r.AssumeRolePolicyDocument) != "null" {
			name := "role/" + r.RoleName + "/trust"
			pol, err := decodeDocument(name, r.AssumeRolePolicyDocument)
			if err != nil {
				return nil, err
			}
			ar.trust = &NamedPolicy{Name: name, Policy: pol}
		}
		snap.roles[r.Arn] = ar
		snap.roles["role/"+strings.ToLower(r.RoleName)] = ar
	}
	sort.Strings(snap.rawUsers)
	return snap, nil
}

// PoliciesFor collects the policies of a user or role (an assumed-role session maps to its role).
func (s *AccountSnapshot) PoliciesFor(principalARN string) (PrincipalPolicies, error) {
	p, err := parsePrincipal(principalARN)
	if err != nil {
		return PrincipalPolicies{}, err
	}
	var out PrincipalPolicies
	managed := func(arns []string) error {
		for _, a := range arns {
			mp, ok := s.managed[a]
			if !ok {
				return fmt.Errorf("%s: attached managed policy %s is not in the snapshot", principalARN, a)
			}
			out.Identity = append(out.Identity, mp)
		}
		return nil
	}
	boundary := func(arn string) error {
		if arn == "" {
			return nil
		}
		mp, ok := s.managed[arn]
		if !ok {
			return fmt.Errorf("%s: permissions boundary %s is not in the snapshot", principalARN, arn)
		}
		out.Boundary = &mp
		return nil
	}
	switch p.kind {
	case "user":
		u, ok := s.users[principalARN]
		if !ok {
			return out, fmt.Errorf("user %s is not in the snapshot", principalARN)
		}
		out.Identity = append(out.Identity, u.inline...)
		if err := managed(u.attached); err != nil {
			return out, err
		}
		for _, gname := range u.groups {
			g, ok := s.groups[gname]
			if !ok {
				return out, fmt.Errorf("%s: group %s is not in the snapshot", principalARN, gname)
			}
			out.Identity = append(out.Identity, g.inline...)
			if err := managed(g.attached); err != nil {
				return out, err
			}
		}
		return out, boundary(u.boundary)
	case "role", "assumed-role":
		r, ok := s.roles[principalARN]
		if !ok && p.kind == "assumed-role" {
			r, ok = s.roles["role/"+p.srole]
		}
		if !ok {
			return out, fmt.Errorf("role %s is not in the snapshot", principalARN)
		}
		out.Identity = append(out.Identity, r.inline...)
		if err := managed(r.attached); err != nil {
			return out, err
		}
		out.Trust = r.trust
		return out, boundary(r.boundary)
	default:
		return out, fmt.Errorf("principal %s: only users and roles have policies in a snapshot", principalARN)
	}
}
