package verdict

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

func policySetFromText(t *testing.T, name, text string) *policycheck.PolicySet {
	t.Helper()
	ps, err := policycheck.IdentityPolicySet(policycheck.Document{Name: name, JSON: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func policySetFromExample(t *testing.T, file string) *policycheck.PolicySet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", file))
	if err != nil {
		t.Fatal(err)
	}
	return policySetFromText(t, file, string(b))
}

// TestLocalExamples: the local source and the consistency class over the examples' policies.
func TestLocalExamples(t *testing.T) {
	ctx := context.Background()
	e, err := policycheck.NewEngine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seed := policySetFromExample(t, "seed-policy.json")
	fixed := policySetFromExample(t, "fixed-policy.json")
	star := policySetFromText(t, "star", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`)
	notCN := policySetFromText(t, "notcn", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"cn-north-1"}}}]}`)

	cases := []struct {
		name    string
		ps      *policycheck.PolicySet
		region  string
		filters bool
		want    policycheck.ConsistencyClass
		codes   []string
	}{
		{"seed", seed, "us-east-1", true, policycheck.CredentialsDeny, []string{policycheck.CodeResourceMismatch, policycheck.CodeUnsupportedConditionKey}},
		{"fixed", fixed, "us-east-1", true, policycheck.PermissiveCredentialsDiscerningFilters, nil},
		{"fixed no filters", fixed, "us-east-1", false, policycheck.PermissiveCredentialsNoFilters, nil},
		{"fixed other region", fixed, "eu-west-1", true, policycheck.CredentialsDeny, []string{policycheck.CodeRegionMismatch}},
		{"any region", star, "eu-west-1", true, policycheck.PermissiveCredentialsDiscerningFilters, nil},
		{"any region no filters", star, "eu-west-1", false, policycheck.PermissiveCredentialsNoFilters, nil},
		{"deny-list region", notCN, "eu-west-1", false, policycheck.PermissiveCredentialsNoFilters, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sr, d, scope := LocalSet(ctx, e, tc.ps, policycheck.OfflinePrincipal, "", tc.region, LocalOptions{Scope: true})
			if d == nil || sr.Source != SourceLocal {
				t.Fatalf("no decision: %+v", sr)
			}
			if tc.ps == fixed && tc.region == "us-east-1" && (scope == nil || !scope.RegionPinned) {
				t.Errorf("the fixed policy pins the region, scope %+v", scope)
			}
			res := &IAMResult{Sources: []SourceResult{sr}, Local: d, Scope: scope}
			Decide(res)
			if got := Consistency(res, tc.filters); got != string(tc.want) {
				t.Errorf("consistency %s, want %s (%s)", got, tc.want, sr.Reason)
			}
			var codes []string
			for _, f := range d.Findings {
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
