package oracle

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const (
	account   = "111122223333"
	principal = "arn:aws:iam::111122223333:user/gloo"
)

// examplePolicy returns one of the repository's example policies (examples/ at the module root).
func examplePolicy(t *testing.T, name string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", name))
	if err != nil {
		t.Fatalf("read example policy %s: %v", name, err)
	}
	if !json.Valid(data) {
		t.Fatalf("example policy %s is not valid JSON", name)
	}
	return data
}

func policy(t *testing.T, doc string) json.RawMessage {
	t.Helper()
	if !json.Valid([]byte(doc)) {
		t.Fatalf("invalid policy JSON in test: %s", doc)
	}
	return json.RawMessage(doc)
}

func describeInstances(region string, extra map[string]any) Request {
	ctx := map[string]any{"aws:RequestedRegion": region}
	for k, v := range extra {
		ctx[k] = v
	}
	return Request{
		Principal:       principal,
		Action:          "ec2:DescribeInstances",
		Resource:        "*",
		ResourceAccount: account,
		Context:         ctx,
	}
}

func TestOracleDecisions(t *testing.T) {
	script := Path(t)
	seed := examplePolicy(t, "seed-policy.json")
	fixed := examplePolicy(t, "fixed-policy.json")
	fullAccess := policy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	denyDescribe := policy(t, `{"Version":"2012-10-17","Statement":[{"Sid":"NoDescribe","Effect":"Deny",
		"Action":"ec2:Describe*","Resource":"*"}]}`)
	s3Only := policy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)

	cases := []Case{
		{
			// The design notes' policy: scoped to instance ARNs and an ec2:ResourceTag condition,
			// neither of which DescribeInstances (wildcard-only, only ec2:Region) ever carries.
			ID:               "seed-policy",
			Request:          describeInstances("us-east-1", map[string]any{"ec2:ResourceTag/Owner": "Gloo"}),
			IdentityPolicies: []json.RawMessage{seed},
		},
		{ID: "fixed-in-region", Request: describeInstances("us-east-1", nil), IdentityPolicies: []json.RawMessage{fixed}},
		{ID: "fixed-out-of-region", Request: describeInstances("eu-west-1", nil), IdentityPolicies: []json.RawMessage{fixed}},
		{
			ID:               "explicit-deny",
			Request:          describeInstances("us-east-1", nil),
			IdentityPolicies: []json.RawMessage{fixed, denyDescribe},
		},
		{
			// Root allows everything, the account's level only S3: every SCP level must allow.
			ID:               "scp-level-denies",
			Request:          describeInstances("us-east-1", nil),
			IdentityPolicies: []json.RawMessage{fixed},
			SCPs:             [][]json.RawMessage{{fullAccess}, {s3Only}},
		},
	}
	want := map[string]string{
		"seed-policy":         ImplicitDeny,
		"fixed-in-region":     Allowed,
		"fixed-out-of-region": ImplicitDeny,
		"explicit-deny":       ExplicitDeny,
		"scp-level-denies":    ImplicitDeny,
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := RunScript(ctx, script, cases)
	if err != nil {
		t.Fatalf("RunScript: %v", err)
	}
	if len(results) != len(cases) {
		t.Fatalf("got %d results for %d cases", len(results), len(cases))
	}
	for i, res := range results {
		if res.ID != cases[i].ID {
			t.Errorf("result %d: id %q, want %q", i, res.ID, cases[i].ID)
		}
		if res.Error != "" {
			t.Errorf("%s: oracle error: %s", res.ID, res.Error)
			continue
		}
		if res.Decision != want[res.ID] {
			t.Errorf("%s: decision %q, want %q", res.ID, res.Decision, want[res.ID])
		}
	}
	// DescribeInstances does not carry ec2:ResourceTag/*: the oracle must say it dropped the key.
	if got := results[0].IgnoredContextKeys; !slices.Contains(got, "ec2:ResourceTag/Owner") {
		t.Errorf("seed-policy: ignoredContextKeys = %q, want it to contain ec2:ResourceTag/Owner", got)
	}
}

func TestOracleReportsUnevaluableCases(t *testing.T) {
	script := Path(t)
	fixed := examplePolicy(t, "fixed-policy.json")
	badAction := describeInstances("us-east-1", nil)
	badAction.Action = "ec2:DescribeInstancez"
	cases := []Case{
		{ID: "unknown-action", Request: badAction, IdentityPolicies: []json.RawMessage{fixed}},
		{ID: "bad-effect", Request: describeInstances("us-east-1", nil), IdentityPolicies: []json.RawMessage{
			policy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Alow","Action":"ec2:DescribeInstances","Resource":"*"}]}`),
		}},
		// A valid case after the broken ones: errors must not shift the answers.
		{ID: "still-answered", Request: describeInstances("us-east-1", nil), IdentityPolicies: []json.RawMessage{fixed}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := RunScript(ctx, script, cases)
	if err != nil {
		t.Fatalf("RunScript: %v", err)
	}
	for _, i := range []int{0, 1} {
		if results[i].Error == "" || results[i].Decision != "" {
			t.Errorf("%s: want an error and no decision, got %+v", results[i].ID, results[i])
		}
	}
	if results[2].Decision != Allowed {
		t.Errorf("still-answered: got %+v, want decision %q", results[2], Allowed)
	}
}

func TestRunScriptMissingScript(t *testing.T) {
	Path(t) // needs node like the other tests; skip alike
	missing := filepath.Join(t.TempDir(), "no-such-oracle.mjs")
	_, err := RunScript(context.Background(), missing, []Case{{ID: "x", Request: describeInstances("us-east-1", nil)}})
	if err == nil {
		t.Fatal("RunScript with a missing script: want an error")
	}
}
