package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// TestCheckDedicatedAccountSecret: an Upstream without filters whose Secret states a dedicated
// account (ec2guard.io/dedicated-account: "true") is restrictive-credentials-no-filters and not
// warned about with EC2G601; without the statement it is permissive-credentials-no-filters with
// EC2G601.
func TestCheckDedicatedAccountSecret(t *testing.T) {
	seed, err := os.ReadFile(seedSecret)
	if err != nil {
		t.Fatal(err)
	}
	dedicated := strings.Replace(string(seed), "  annotations:\n", "  annotations:\n    "+ec2.AnnotationSecretDedicatedAccount+": \"true\"\n", 1)
	if dedicated == string(seed) {
		t.Fatal("the seed secret has no annotations block to add to")
	}
	dir := t.TempDir()
	dedicatedFile := filepath.Join(dir, "secret.yaml")
	if err := os.WriteFile(dedicatedFile, []byte(dedicated), 0o600); err != nil {
		t.Fatal(err)
	}
	upstream := examplesDir + "/broken/EC2G112-no-filters.yaml"
	policy := examplesDir + "/fixed-policy.json"
	for _, tc := range []struct {
		secret    string
		class     policycheck.ConsistencyClass
		want601   bool
		statement string
	}{
		{seedSecret, policycheck.PermissiveCredentialsNoFilters, true, "none"},
		{dedicatedFile, policycheck.RestrictiveCredentialsNoFilters, false, "dedicated"},
	} {
		_, out := checkJSON(t, "-f", tc.secret, "-f", upstream, "--policy", policy)
		if len(out.Results) != 1 {
			t.Fatalf("%s: %d results", tc.statement, len(out.Results))
		}
		r := out.Results[0]
		has601 := slices.ContainsFunc(r.Warnings, func(w string) bool { return strings.Contains(w, "EC2G601") }) ||
			slices.ContainsFunc(r.Errors, func(e jsonError) bool { return e.Code == "EC2G601" })
		if r.Consistency != string(tc.class) || has601 != tc.want601 {
			t.Errorf("statement %s: consistency %s, EC2G601 %v; want %s, %v (warnings %v)", tc.statement, r.Consistency, has601, tc.class, tc.want601, r.Warnings)
		}
	}
}
