package policycheck

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// BenchmarkRuleGroups is a tuning aid: the cost of preparing the input and of evaluating each
// stage of the Rego (up to that rule, cumulatively) for a one-statement DescribeInstances policy.
func BenchmarkRuleGroups(b *testing.B) {
	ctx := context.Background()
	e, err := NewEngine(ctx, WithDecisionCache(0))
	if err != nil {
		b.Fatal(err)
	}
	ps := policySetFromText(b, benchPolicy(1))
	req := DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1")
	b.Run("prepare-request", func(b *testing.B) {
		for b.Loop() {
			prepareRequest(e.catalog, req)
		}
	})
	p, _ := prepareRequest(e.catalog, req)
	b.Run("input-ast", func(b *testing.B) {
		for b.Loop() {
			regoInput(ps, p)
		}
	})
	input := regoInput(ps, p)
	b.Run("eval-result", func(b *testing.B) {
		for b.Loop() {
			e.prepared.Eval(ctx, rego.EvalParsedInput(input))
		}
	})
	for _, q := range []string{"data.ec2guard.iam.candidates", "data.ec2guard.iam.act", "data.ec2guard.iam.res", "data.ec2guard.iam.arp", "data.ec2guard.iam.cond_true", "data.ec2guard.iam.applies", "data.ec2guard.iam.decision", "data.ec2guard.iam.findings", "data.ec2guard.iam.result", "x := 1"} {
		pq, err := rego.New(rego.Query(q), rego.Module("iam.rego", mustRead(b))).PrepareForEval(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				pq.Eval(ctx, rego.EvalParsedInput(input))
			}
		})
	}
}

func mustRead(b *testing.B) string {
	b.Helper()
	m, err := regoModules()
	if err != nil {
		b.Fatal(err)
	}
	return m["rego/iam.rego"]
}
