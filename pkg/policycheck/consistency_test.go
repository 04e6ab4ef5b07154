package policycheck

import (
	"context"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	allowed := Decision{Result: Allowed}
	denied := Decision{Result: ImplicitDeny}
	cases := []struct {
		d       Decision
		filters bool
		scope   Scope
		want    ConsistencyClass
	}{
		{denied, true, Scope{RegionPinned: true}, CredentialsDeny},
		{Decision{Result: ExplicitDeny}, false, Scope{}, CredentialsDeny},
		{allowed, true, Scope{}, PermissiveCredentialsDiscerningFilters},
		{allowed, false, Scope{}, PermissiveCredentialsNoFilters},
		// A region pin never narrows what the Upstream's own-region listing returns.
		{allowed, false, Scope{RegionPinned: true}, PermissiveCredentialsNoFilters},
		{allowed, true, Scope{RegionPinned: true}, PermissiveCredentialsDiscerningFilters},
		{allowed, false, Scope{DedicatedAccount: true}, RestrictiveCredentialsNoFilters},
		{allowed, true, Scope{DedicatedAccount: true}, RestrictiveCredentialsDiscerningFilters},
	}
	for _, tc := range cases {
		if got := Classify(tc.d, tc.filters, tc.scope); got != tc.want {
			t.Errorf("Classify(%s, %v, %+v) = %s, want %s", tc.d.Result, tc.filters, tc.scope, got, tc.want)
		}
	}
}

func TestIdentityPolicySet(t *testing.T) {
	ps, err := IdentityPolicySet(Document{Name: "fixed-policy.json", JSON: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := realEngine(t).Evaluate(context.Background(), ps, DescribeInstancesRequest(OfflinePrincipal, "", "eu-west-1"))
	if err != nil || !v.IsAllowed() || v.MatchedStatements[0].Policy != "fixed-policy.json" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := IdentityPolicySet(Document{Name: "bad.json", JSON: []byte(`{"Statement":{"Effect":"allow"}}`)}); err == nil || !strings.Contains(err.Error(), "policy bad.json: ") {
		t.Fatalf("bad document: %v", err)
	}
}
