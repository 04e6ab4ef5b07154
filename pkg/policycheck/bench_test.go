package policycheck

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// processCPU returns the CPU time (user+system) this process has used. Benchmarks report it per
// operation next to the wall time: the development machine is shared, and CPU time is far less
// sensitive to other processes' load than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ns/op metric for the loop that follows; call the returned func after it.
func reportCPU(b *testing.B) func() {
	b.Helper()
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// benchPolicy builds an identity policy of n statements in the shape real policies have: a few
// statements for other services and actions, one region-pinned Allow for DescribeInstances, a Deny
// for another region; every statement carries a condition.
func benchPolicy(n int) string {
	stmts := make([]string, 0, n)
	for i := range n {
		var s string
		switch {
		case i == n-1:
			s = `{"Sid":"Describe","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["us-east-1","eu-west-1"]}}}`
		case i%5 == 0:
			s = fmt.Sprintf(`{"Effect":"Deny","Action":"ec2:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"cn-north-%d"}}}`, i)
		case i%5 == 1:
			s = fmt.Sprintf(`{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-%d/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}`, i)
		case i%5 == 2:
			s = fmt.Sprintf(`{"Effect":"Allow","Action":"ec2:StartInstances","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{"StringEquals":{"ec2:ResourceTag/team":"t%d"}}}`, i)
		case i%5 == 3:
			s = fmt.Sprintf(`{"Effect":"Allow","Action":"iam:Get*","Resource":"arn:aws:iam::111122223333:user/u%d","Condition":{"IpAddress":{"aws:SourceIp":"10.%d.0.0/16"}}}`, i, i%250)
		default:
			s = fmt.Sprintf(`{"Effect":"Allow","Action":"ec2:DescribeImages","Resource":"*","Condition":{"StringLike":{"aws:username":"svc-%d-*"}}}`, i)
		}
		stmts = append(stmts, s)
	}
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(stmts, ",") + `]}`
}

func benchmarkDescribe(b *testing.B, n int, cache bool) {
	ctx := context.Background()
	var opts []Option
	if !cache {
		opts = append(opts, WithDecisionCache(0))
	}
	e, err := NewEngine(ctx, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ps := policySetFromText(b, benchPolicy(n))
	req := DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1")
	d, err := e.Evaluate(ctx, ps, req)
	if err != nil || !d.IsAllowed() {
		b.Fatalf("warm-up: %v %+v", err, d)
	}
	rules, exprs := regoWork(b, e, ps, req)
	b.ReportAllocs()
	b.ResetTimer()
	done := reportCPU(b)
	for b.Loop() {
		if _, err := e.Evaluate(ctx, ps, req); err != nil {
			b.Fatal(err)
		}
	}
	done()
	if !cache {
		// Load-independent measures of the Rego's work per decision.
		b.ReportMetric(float64(rules), "rules/op")
		b.ReportMetric(float64(exprs), "exprs/op")
	}
}

// regoWork evaluates the request once under a counting tracer and returns how many rule bodies
// OPA entered and how many expressions it evaluated.
func regoWork(b *testing.B, e *Engine, ps *PolicySet, req Request) (rules, exprs int) {
	b.Helper()
	p, err := prepareRequest(e.catalog, req)
	if err != nil {
		b.Fatal(err)
	}
	c := &countingTracer{}
	if _, err := e.prepared.Eval(context.Background(), rego.EvalParsedInput(regoInput(ps, p)), rego.EvalQueryTracer(c)); err != nil {
		b.Fatal(err)
	}
	return c.enter, c.eval
}

// countingTracer counts OPA's Enter (rule body) and Eval (expression) events.
type countingTracer struct{ enter, eval int }

func (*countingTracer) Enabled() bool { return true }

func (*countingTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (c *countingTracer) TraceEvent(ev topdown.Event) {
	switch ev.Op {
	case topdown.EnterOp:
		c.enter++
	case topdown.EvalOp:
		c.eval++
	}
}

// One DescribeInstances decision with the prepared query reused and the policy set compiled once;
// the decision cache is off, so every iteration runs the Rego.
func BenchmarkDescribeInstances1(b *testing.B)   { benchmarkDescribe(b, 1, false) }
func BenchmarkDescribeInstances10(b *testing.B)  { benchmarkDescribe(b, 10, false) }
func BenchmarkDescribeInstances100(b *testing.B) { benchmarkDescribe(b, 100, false) }

// The same with the decision cache on (the webhook's steady state: same principal, same request).
func BenchmarkDescribeInstances10Cached(b *testing.B) { benchmarkDescribe(b, 10, true) }

// BenchmarkCompilePolicySet10 is the per-principal cost of parsing and compiling a 10-statement
// policy (paid once per policy set; cached by the callers).
func BenchmarkCompilePolicySet10(b *testing.B) {
	text := []byte(benchPolicy(10))
	b.ReportAllocs()
	done := reportCPU(b)
	defer done()
	for b.Loop() {
		p, err := ParsePolicy("p", text)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := NewPolicySet(PolicySetInput{Identity: []NamedPolicy{{Name: "p", Policy: p}}}); err != nil {
			b.Fatal(err)
		}
	}
}
