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

func TestCheckUpstreamExamples(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t)
	seed := policySetFromFile(t, "testdata/seed-policy.json")
	fixed := policySetFromFile(t, "testdata/fixed-policy.json")
	star := policySetFromText(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`)
	notCN := policySetFromText(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"cn-north-1"}}}]}`)

	cases := []struct {
		name    string
		ps      *PolicySet
		region  string
		filters bool
		want    ConsistencyClass
		codes   []string
	}{
		{"seed", seed, "us-east-1", true, CredentialsDeny, []string{CodeResourceMismatch, CodeUnsupportedConditionKey}},
		{"fixed", fixed, "us-east-1", true, PermissiveCredentialsDiscerningFilters, nil},
		{"fixed no filters", fixed, "us-east-1", false, PermissiveCredentialsNoFilters, nil},
		{"fixed other region", fixed, "eu-west-1", true, CredentialsDeny, []string{CodeRegionMismatch}},
		{"any region", star, "eu-west-1", true, PermissiveCredentialsDiscerningFilters, nil},
		{"any region no filters", star, "eu-west-1", false, PermissiveCredentialsNoFilters, nil},
		{"deny-list region", notCN, "eu-west-1", false, PermissiveCredentialsNoFilters, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := e.CheckUpstream(ctx, tc.ps, UpstreamFacts{Region: tc.region, HasFilters: tc.filters})
			if err != nil {
				t.Fatal(err)
			}
			if tc.ps == fixed && tc.region == "us-east-1" && !v.Scope.RegionPinned {
				t.Errorf("the fixed policy pins the region, scope %+v", v.Scope)
			}
			if v.Consistency != tc.want {
				t.Errorf("consistency %s, want %s (%s)", v.Consistency, tc.want, v.Summary)
			}
			var codes []string
			for _, f := range v.Decision.Findings {
				codes = append(codes, f.Code)
			}
			if len(codes) != len(tc.codes) {
				t.Fatalf("findings %v, want %v", codes, tc.codes)
			}
			for i := range codes {
				if codes[i] != tc.codes[i] {
					t.Errorf("findings %v, want %v", codes, tc.codes)
				}
			}
		})
	}
}

func TestIdentityPolicySet(t *testing.T) {
	ps, err := IdentityPolicySet(Document{Name: "fixed-policy.json", JSON: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := realEngine(t).CheckUpstream(context.Background(), ps, UpstreamFacts{Region: "eu-west-1", HasFilters: true})
	if err != nil || v.Consistency != PermissiveCredentialsDiscerningFilters || v.Decision.MatchedStatements[0].Policy != "fixed-policy.json" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := IdentityPolicySet(Document{Name: "bad.json", JSON: []byte(`{"Statement":{"Effect":"allow"}}`)}); err == nil || !strings.Contains(err.Error(), "policy bad.json: ") {
		t.Fatalf("bad document: %v", err)
	}
}
