package policycheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// filledPolicy is a managed policy of exactly chars characters (as policyChars counts them).
func filledPolicy(t testing.TB, name string, chars int) NamedPolicy {
	t.Helper()
	base := mustPolicy(t, name, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/x"}]}`)
	pad := chars - policyChars(base.Policy)
	if pad < 0 {
		t.Fatalf("policy %s cannot be as small as %d characters", name, chars)
	}
	np := mustPolicy(t, name, fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/x%s"}]}`, strings.Repeat("y", pad)))
	if got := policyChars(np.Policy); got != chars {
		t.Fatalf("policy %s has %d characters, want %d", name, got, chars)
	}
	return np
}

// TestPolicySetSizeBound: the largest policy set IAM's quotas allow an IAM user compiles; one
// character more is refused with CodePolicySetTooLarge.
func TestPolicySetSizeBound(t *testing.T) {
	var in PolicySetInput
	for i := range managedPerEntityMax + groupsPerUser*managedPerGroup {
		in.Identity = append(in.Identity, filledPolicy(t, fmt.Sprintf("managed-%d", i), managedPolicyChars))
	}
	in.Identity = append(in.Identity, filledPolicy(t, "user-inline", userInlineChars))
	for g := range groupsPerUser {
		in.Identity = append(in.Identity, filledPolicy(t, fmt.Sprintf("group-%d-inline", g), groupInlineChars))
	}
	b := filledPolicy(t, "boundary", managedPolicyChars)
	in.Boundary = &b
	for l := range orgLevels {
		var scps, rcps []NamedPolicy
		for i := range orgPoliciesPerTarget {
			scps = append(scps, filledPolicy(t, fmt.Sprintf("scp-%d-%d", l, i), orgPolicyChars))
			rcps = append(rcps, mustPolicy(t, fmt.Sprintf("rcp-%d-%d", l, i), rcpDenyOf(orgPolicyChars)))
		}
		in.SCPs = append(in.SCPs, scps)
		in.RCPs = append(in.RCPs, rcps)
	}
	s := filledPolicy(t, "session", sessionPolicyChars)
	in.Session = &s
	r := mustPolicy(t, "bucket", fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/%s"}]}`, strings.Repeat("z", bucketPolicyBytes-60)))
	in.Resource = &r
	total := 0
	for _, err := range []error{checkPolicySetSize(in)} {
		if err != nil {
			t.Fatalf("a policy set within IAM's quotas is refused: %v", err)
		}
	}
	for _, p := range in.Identity {
		total += policyChars(p.Policy)
	}
	t.Logf("identity policies: %d characters; bound for the whole set %d", total, MaxPolicySetChars)
	// One more managed policy than IAM allows.
	in.Identity = append(in.Identity, filledPolicy(t, "one-too-many", managedPolicyChars))
	_, err := NewPolicySet(in)
	var le *LimitError
	if !errors.As(err, &le) || le.Code != CodePolicySetTooLarge {
		t.Fatalf("NewPolicySet over the bound: got %v, want a LimitError %s", err, CodePolicySetTooLarge)
	}
	if !strings.Contains(le.Message, fmt.Sprint(MaxPolicySetChars)) || !strings.Contains(le.Message, "largest") {
		t.Errorf("message does not state the bound and the largest policy: %s", le.Message)
	}
}

// rcpDenyOf is an RCP Deny of about n characters (RCPs must deny, and name Principal "*").
func rcpDenyOf(n int) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/%s"}]}`, strings.Repeat("r", n-60))
}

// TestSubstitutedPatternBound: a pattern that would expand beyond MaxSubstitutedPatternChars for
// the request is refused with CodePatternTooLong; the same policy for a short principal ARN is
// evaluated (and decided).
func TestSubstitutedPatternBound(t *testing.T) {
	ctx := context.Background()
	e := testEngine(t)
	// A role's inline policies may hold 10,240 characters.
	value := strings.Repeat("${aws:PrincipalArn}*", (roleInlineChars-200)/20)
	doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Long","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringLike":{"aws:PrincipalArn":["%s"]}}}]}`, value)
	ps := policySetFromText(t, doc)
	_, err := e.Evaluate(ctx, ps, DescribeInstancesRequest(adversarialPrincipal(), "", "us-east-1"))
	var le *LimitError
	if !errors.As(err, &le) || le.Code != CodePatternTooLong {
		t.Fatalf("long principal: got %v, want a LimitError %s", err, CodePatternTooLong)
	}
	if !strings.Contains(le.Message, `"Long"`) || strings.Contains(le.Message, adversarialPrincipal()) {
		t.Errorf("message should name the statement and not quote the value: %s", le.Message)
	}
	d, err := e.Evaluate(ctx, ps, DescribeInstancesRequest("arn:aws:iam::111122223333:role/short", "", "us-east-1"))
	if err != nil {
		t.Fatalf("short principal: %v", err)
	}
	// The value needs the ARN about 500 times over: it does not match the ARN once.
	if d.Result != ImplicitDeny {
		t.Errorf("short principal: %s, want implicitDeny", d.Result)
	}
}
