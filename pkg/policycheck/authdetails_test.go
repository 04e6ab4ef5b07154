package policycheck

import (
	"net/url"
	"strings"
	"testing"
)

func TestAuthorizationDetails(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`
	encoded := url.QueryEscape(doc)
	snapshot := `{
	  "UserDetailList": [{"UserName": "gloo", "Arn": "arn:aws:iam::111122223333:user/gloo",
	    "UserPolicyList": [{"PolicyName": "inline", "PolicyDocument": "` + encoded + `"}],
	    "GroupList": ["readers"],
	    "AttachedManagedPolicies": [{"PolicyName": "m", "PolicyArn": "arn:aws:iam::111122223333:policy/m"}],
	    "PermissionsBoundary": {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": "arn:aws:iam::111122223333:policy/b"}}],
	  "GroupDetailList": [{"GroupName": "readers", "GroupPolicyList": [{"PolicyName": "g", "PolicyDocument": ` + doc + `}], "AttachedManagedPolicies": []}],
	  "RoleDetailList": [{"RoleName": "app", "Arn": "arn:aws:iam::111122223333:role/path/app",
	    "AssumeRolePolicyDocument": {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]},
	    "RolePolicyList": [], "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::111122223333:policy/m"}]}],
	  "Policies": [
	    {"PolicyName": "m", "Arn": "arn:aws:iam::111122223333:policy/m", "DefaultVersionId": "v2", "PolicyVersionList": [
	      {"Document": {"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}, "VersionId": "v1", "IsDefaultVersion": false},
	      {"Document": ` + doc + `, "VersionId": "v2", "IsDefaultVersion": true}]},
	    {"PolicyName": "b", "Arn": "arn:aws:iam::111122223333:policy/b", "DefaultVersionId": "v1", "PolicyVersionList": [
	      {"Document": ` + doc + `, "VersionId": "v1", "IsDefaultVersion": true}]}]}`
	snap, err := ParseAuthorizationDetails([]byte(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	pp, err := snap.PoliciesFor("arn:aws:iam::111122223333:user/gloo")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pp.Identity {
		names = append(names, p.Name)
		if p.Policy.Statements[0].Effect != Allow {
			t.Errorf("%s: got the non-default version", p.Name)
		}
	}
	if got := strings.Join(names, ","); got != "user/gloo/inline,m,group/readers/g" {
		t.Errorf("identity policies: %s", got)
	}
	if pp.Boundary == nil || pp.Boundary.Name != "b" {
		t.Errorf("boundary: %+v", pp.Boundary)
	}
	rp, err := snap.PoliciesFor("arn:aws:sts::111122223333:assumed-role/app/session")
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.Identity) != 1 || rp.Trust == nil || rp.Trust.Policy.Statements[0].Principal.Service[0] != "ec2.amazonaws.com" {
		t.Errorf("role policies: %+v", rp)
	}
	if _, err := snap.PoliciesFor("arn:aws:iam::111122223333:user/nobody"); err == nil || !strings.Contains(err.Error(), "not in the snapshot") {
		t.Errorf("unknown user: %v", err)
	}
}

func TestAuthorizationDetailsBadDocument(t *testing.T) {
	_, err := ParseAuthorizationDetails([]byte(`{"UserDetailList":[{"UserName":"u","Arn":"arn:aws:iam::1:user/u","UserPolicyList":[{"PolicyName":"p","PolicyDocument":"%7B%22Statement%22%3A1%7D"}]}]}`))
	if err == nil || !strings.Contains(err.Error(), "policy user/u/p") || !strings.Contains(err.Error(), "Statement") {
		t.Fatalf("want an error naming the policy and element, got %v", err)
	}
}
