package policycheck

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
)

func mustPolicy(t testing.TB, name, text string) NamedPolicy {
	t.Helper()
	p, err := ParsePolicy(name, []byte(text))
	if err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	return NamedPolicy{Name: name, Policy: p}
}

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), WithCatalog(fakeCatalog{}))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func policySetFromText(t testing.TB, text string) *PolicySet {
	t.Helper()
	ps, err := NewPolicySet(PolicySetInput{Identity: []NamedPolicy{mustPolicy(t, "policy.json", text)}})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func policySetFromFile(t testing.TB, path string) *PolicySet {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return policySetFromText(t, string(b))
}

// TestSeedPolicySummary checks the explanation issue #4 asks for: implicit deny, because the only
// statement is scoped to instance ARNs and a tag condition DescribeInstances never carries; fix:
// Resource "*", pin the region with aws:RequestedRegion, keep tag scoping in the filters.
func TestSeedPolicySummary(t *testing.T) {
	e := realEngine(t)
	d, err := e.Evaluate(context.Background(), policySetFromFile(t, "testdata/seed-policy.json"),
		DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	s := d.Summary()
	for _, want := range []string{"implicit deny", "ec2:DescribeInstances", "statement #0", "arn:aws:ec2:us-east-1:111122223333:instance/*",
		"ec2:ResourceTag/Owner", "never carry", `"Resource": "*"`, "aws:RequestedRegion", "Upstream's filters"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}

func TestEngineConcurrentUse(t *testing.T) {
	e := realEngine(t)
	seed := policySetFromFile(t, "testdata/seed-policy.json")
	fixed := policySetFromFile(t, "testdata/fixed-policy.json")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				region := []string{"us-east-1", "eu-west-1"}[(g+i)%2]
				ps, want := fixed, Allowed
				if region != "us-east-1" {
					want = ImplicitDeny
				}
				if i%3 == 0 {
					ps, want = seed, ImplicitDeny
				}
				d, err := e.Evaluate(context.Background(), ps, DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", region))
				if err != nil {
					errs <- err.Error()
					return
				}
				if d.Result != want {
					errs <- region + ": got " + d.Result + ", want " + want
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestDecisionCacheReturnsCopies(t *testing.T) {
	e := realEngine(t)
	ps := policySetFromFile(t, "testdata/fixed-policy.json")
	req := DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1")
	d1, _ := e.Evaluate(context.Background(), ps, req)
	d1.MatchedStatements[0].Policy = "changed by the caller"
	d2, _ := e.Evaluate(context.Background(), ps, req)
	if d2.MatchedStatements[0].Policy != "policy.json" {
		t.Fatalf("a caller's change leaked into the cache: %+v", d2.MatchedStatements[0])
	}
}

func TestEvaluateRequestErrors(t *testing.T) {
	e := realEngine(t)
	ps := policySetFromFile(t, "testdata/fixed-policy.json")
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Principal: "arn:aws:iam::111122223333:user/gloo", Action: "ec2:Describe*"}, "without wildcards"},
		{Request{Principal: "arn:aws:iam::111122223333:user/gloo", Action: "ec2:Nope"}, "unknown to the IAM action catalog"},
		{Request{Principal: "gloo", Action: "ec2:DescribeInstances"}, "principal \"gloo\""},
		{Request{Principal: "arn:aws:iam::111122223333:user/gloo", Action: "s3:GetObject", Resource: "bucket"}, "must be \"*\" or an ARN"},
		{Request{Principal: "arn:aws:iam::111122223333:user/gloo", Action: "ec2:DescribeInstances", Context: map[string]any{"aws:username": map[string]any{}}}, "context key \"aws:username\""},
	} {
		if _, err := e.Evaluate(context.Background(), ps, tc.req); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.req, err, tc.want)
		}
	}
	if _, err := e.Evaluate(context.Background(), nil, DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1")); err == nil {
		t.Error("nil policy set: no error")
	}
}
