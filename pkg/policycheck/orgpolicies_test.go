package policycheck

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// orgLevelsFromListings reads testdata/organizations: for each target, root first, the output of
// `aws organizations list-policies-for-target --filter SERVICE_CONTROL_POLICY|RESOURCE_CONTROL_POLICY`
// and, per policy, `aws organizations describe-policy` (whose Content is the document as a JSON
// string), as an AWS Organizations listing shows them: AWS's FullAWSAccess and RCPFullAWSAccess
// attached at every level.
func orgLevelsFromListings(t *testing.T) (scps, rcps [][]NamedPolicy) {
	t.Helper()
	dir := filepath.Join("testdata", "organizations")
	read := func(name string, v any) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	level := func(listing string) []NamedPolicy {
		var l struct {
			Policies []struct{ Id, Name string }
		}
		read(listing, &l)
		var out []NamedPolicy
		for _, p := range l.Policies {
			var d struct{ Policy struct{ Content string } }
			read("describe-policy-"+p.Id+".json", &d)
			out = append(out, mustPolicy(t, p.Name, d.Policy.Content))
		}
		return out
	}
	listings, err := filepath.Glob(filepath.Join(dir, "list-policies-for-target-*-scp.json"))
	if err != nil || len(listings) != 3 {
		t.Fatalf("listings: %v %v", listings, err)
	}
	for _, l := range listings { // sorted: root, OU, account
		base := filepath.Base(l)
		scps = append(scps, level(base))
		rcps = append(rcps, level(strings.TrimSuffix(base, "-scp.json")+"-rcp.json"))
	}
	return scps, rcps
}

// TestOrganizationListings evaluates policy sets built from real Organizations listings: the
// AWS-managed RCPFullAWSAccess (the only Allow an RCP may hold) and FullAWSAccess at every level,
// a customer RCP that denies requests without TLS at the root, and an SCP that denies regions
// outside the EU at the OU. AWS: allowed unless denied.
func TestOrganizationListings(t *testing.T) {
	scps, rcps := orgLevelsFromListings(t)
	for i, l := range rcps {
		if l[0].Name != "RCPFullAWSAccess" {
			t.Fatalf("RCP level %d does not list RCPFullAWSAccess first: %v", i, l[0].Name)
		}
	}
	ps, err := NewPolicySet(PolicySetInput{
		Identity: []NamedPolicy{mustPolicy(t, "identity", pol(allowStmt("s3:GetObject", "*"), allowStmt("ec2:DescribeInstances", "*")))},
		SCPs:     scps,
		RCPs:     rcps,
	})
	if err != nil {
		t.Fatalf("a policy set with RCPFullAWSAccess and FullAWSAccess is refused: %v", err)
	}
	e := realEngine(t)
	ctx := context.Background()
	cases := []struct {
		name string
		req  Request
		want string
	}{
		{"S3 over TLS: the RCP Deny does not apply, RCPFullAWSAccess grants nothing and denies nothing",
			getObject(user, map[string]any{"aws:SecureTransport": "true", "aws:RequestedRegion": "eu-west-1"}), Allowed},
		{"S3 without TLS: the customer RCP denies",
			getObject(user, map[string]any{"aws:SecureTransport": "false", "aws:RequestedRegion": "eu-west-1"}), ExplicitDeny},
		{"S3 outside the EU: the OU's SCP denies",
			getObject(user, map[string]any{"aws:SecureTransport": "true", "aws:RequestedRegion": "us-east-1"}), ExplicitDeny},
		{"EC2 in the EU: FullAWSAccess allows at every level, RCPs do not apply to EC2", describe("eu-west-1"), Allowed},
		{"EC2 outside the EU: the OU's SCP denies", describe("us-east-1"), ExplicitDeny},
	}
	for _, c := range cases {
		d, err := e.Evaluate(ctx, ps, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if d.Result != c.want {
			t.Errorf("%s: %s, want %s (matched %v)", c.name, d.Result, c.want, d.MatchedStatements)
		}
	}
	// Without the identity Allow nothing is allowed: neither managed policy grants.
	bare, err := NewPolicySet(PolicySetInput{SCPs: scps, RCPs: rcps})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Evaluate(ctx, bare, getObject(user, map[string]any{"aws:SecureTransport": "true", "aws:RequestedRegion": "eu-west-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if d.Result != ImplicitDeny {
		t.Errorf("RCPFullAWSAccess and FullAWSAccess alone: %s, want implicitDeny", d.Result)
	}
}

// TestRCPAllowOnlyFullAccess: an RCP Allow other than RCPFullAWSAccess's statement is refused.
func TestRCPAllowOnlyFullAccess(t *testing.T) {
	for name, doc := range map[string]string{
		"scoped action":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`,
		"with condition": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`,
		"AWS principal":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"*","Resource":"*"}]}`,
		"NotResource":    `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","NotResource":"arn:aws:s3:::x"}]}`,
	} {
		_, err := NewPolicySet(PolicySetInput{RCPs: [][]NamedPolicy{{mustPolicy(t, name, doc)}}})
		if err == nil || !strings.Contains(err.Error(), "RCPFullAWSAccess") {
			t.Errorf("%s: got %v, want a refusal naming RCPFullAWSAccess", name, err)
		}
	}
}
