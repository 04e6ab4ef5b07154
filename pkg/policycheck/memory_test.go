package policycheck

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// adversarialPrincipal is a role ARN of the longest shape IAM allows: a 512-character path and a
// 64-character name (IAM API Reference, CreateRole: Path up to 512 characters, RoleName up to 64).
func adversarialPrincipal() string {
	path := "/" + strings.Repeat("p", 510) + "/"
	return "arn:aws:iam::111122223333:role" + path + strings.Repeat("r", 64)
}

// adversarialPolicies builds n identity policies of at most 6,144 non-whitespace characters each
// (IAM's managed-policy quota), every one a StringLike condition whose single value repeats
// `${aws:PrincipalArn}*`: within IAM's quotas, and with a long principal ARN every value expands to
// a pattern of about 170 KB. 110 policies = 10 attached to the user and 10 on each of its 10 groups
// (the default quotas).
func adversarialPolicies(t testing.TB, n int) []NamedPolicy {
	t.Helper()
	out := make([]NamedPolicy, 0, n)
	for i := range n {
		head := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"S%d","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringLike":{"aws:PrincipalArn":["`, i)
		tail := fmt.Sprintf(`x%d"]}}}]}`, i)
		unit := "${aws:PrincipalArn}*"
		reps := (managedPolicyChars - len(head) - len(tail)) / len(unit)
		doc := head + strings.Repeat(unit, reps) + tail
		if len(doc) > managedPolicyChars {
			t.Fatalf("adversarial policy %d has %d characters, more than IAM's %d", i, len(doc), managedPolicyChars)
		}
		out = append(out, mustPolicy(t, fmt.Sprintf("managed-%03d", i), doc))
	}
	return out
}

// heapAfterGC returns the live heap after two full collections.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// adversarialHeapBound is the live heap the adversarial policy set may leave behind after its
// evaluation (the webhook's chart limit is 512 MiB).
const adversarialHeapBound = 256 << 20

// TestAdversarialVariablePoliciesHeap evaluates 110 policies of 6 KB full of `${aws:PrincipalArn}`
// for a principal with a long ARN, and checks that the live heap stays under a fixed bound while
// the engine and policy set are still in use. Substituted patterns used to become regular
// expressions in OPA's process-wide regex cache (hundreds of MB kept).
func TestAdversarialVariablePoliciesHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates the adversarial policy set")
	}
	ctx := context.Background()
	before := heapAfterGC()
	e, err := NewEngine(ctx, WithCatalog(fakeCatalog{}), WithDecisionCache(0))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := NewPolicySet(PolicySetInput{Identity: adversarialPolicies(t, 110)})
	if err != nil {
		t.Fatal(err)
	}
	principal := adversarialPrincipal()
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		d, err := e.Evaluate(ctx, ps, DescribeInstancesRequest(principal, "", region))
		if err != nil {
			t.Fatal(err)
		}
		// Every value ends in "x<i>", which the principal ARN does not: nothing applies.
		if d.Result != ImplicitDeny {
			t.Fatalf("%s: decision %s, want %s", region, d.Result, ImplicitDeny)
		}
	}
	after := heapAfterGC()
	runtime.KeepAlive(e)
	runtime.KeepAlive(ps)
	grown := int64(after) - int64(before)
	t.Logf("live heap after GC: %.1f MiB before, %.1f MiB after (+%.1f MiB)", mib(before), mib(after), float64(grown)/(1<<20))
	if after > adversarialHeapBound {
		t.Fatalf("live heap after evaluating the adversarial policy set is %.1f MiB, above the %d MiB bound", mib(after), adversarialHeapBound>>20)
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// BenchmarkAdversarialVariablePolicies evaluates DescribeInstances against the adversarial policy
// set of TestAdversarialVariablePoliciesHeap (compiled once) and reports the live heap after GC
// with the engine and set still in use.
func BenchmarkAdversarialVariablePolicies(b *testing.B) {
	ctx := context.Background()
	e, err := NewEngine(ctx, WithCatalog(fakeCatalog{}), WithDecisionCache(0))
	if err != nil {
		b.Fatal(err)
	}
	ps, err := NewPolicySet(PolicySetInput{Identity: adversarialPolicies(b, 110)})
	if err != nil {
		b.Fatal(err)
	}
	req := DescribeInstancesRequest(adversarialPrincipal(), "", "us-east-1")
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Evaluate(ctx, ps, req); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(mib(heapAfterGC()), "live-MiB")
	runtime.KeepAlive(e)
	runtime.KeepAlive(ps)
}
