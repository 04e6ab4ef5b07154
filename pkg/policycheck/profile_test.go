package policycheck

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/profiler"
	"github.com/open-policy-agent/opa/v1/rego"
)

// TestRegoProfile is a tuning aid, not a check: with EC2GUARD_REGO_PROFILE set to a JSON Lines file
// of simulation cases, it evaluates them under OPA's profiler and logs the costliest expressions.
func TestRegoProfile(t *testing.T) {
	path := os.Getenv("EC2GUARD_REGO_PROFILE")
	if path == "" {
		t.Skip("set EC2GUARD_REGO_PROFILE=cases.jsonl to profile the Rego")
	}
	ctx := context.Background()
	e, err := NewEngine(ctx, WithDecisionCache(0))
	if err != nil {
		t.Fatal(err)
	}
	modules, err := regoModules()
	if err != nil {
		t.Fatal(err)
	}
	prof := profiler.New()
	opts := []func(*rego.Rego){rego.Query(regoQuery)}
	for name, src := range modules {
		opts = append(opts, rego.Module(name, src))
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cases []SimulationCase
	if strings.HasPrefix(path, "bench:") {
		n, _ := strconv.Atoi(strings.TrimPrefix(path, "bench:"))
		c := SimulationCase{Request: DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1")}
		c.IdentityPolicies = []json.RawMessage{json.RawMessage(benchPolicy(n))}
		for range 1000 {
			cases = append(cases, c)
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() && len(cases) < 1000 {
			c, err := ParseSimulationCase(sc.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, c)
		}
	}
	n := 0
	for _, c := range cases {
		ps, err := c.PolicySet()
		if err != nil {
			continue
		}
		p, err := prepareRequest(e.catalog, c.Request)
		if err != nil {
			continue
		}
		input := regoInput(ps, p)
		if _, err := pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalQueryTracer(prof)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for _, s := range prof.ReportTopNResults(400, []string{"total_time_ns"}) {
		t.Logf("%8.2fms num_eval=%7d num_redo=%7d %s:%d", float64(s.ExprTimeNs)/1e6, s.NumEval, s.NumRedo, s.Location.File, s.Location.Row)
	}
}
