package iamdiff

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/test/harness/oracle"
)

// TestMinimizeDisagreements is a debugging aid, not a check: with IAMDIFF_MINIMIZE set to a file of
// cases (as written through IAMDIFF_FAILED_OUT), it removes statements and context keys while the
// engine and the oracle still disagree, and logs the smallest case found.
func TestMinimizeDisagreements(t *testing.T) {
	path := os.Getenv("IAMDIFF_MINIMIZE")
	if path == "" {
		t.Skip("set IAMDIFF_MINIMIZE=cases.jsonl to minimize disagreeing cases")
	}
	oracle.Path(t)
	ctx := context.Background()
	engine, err := policycheck.NewEngine(ctx, policycheck.WithDecisionCache(0))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c oracle.Case
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		disagree := func(c oracle.Case) bool {
			e := engine.Simulate(ctx, toSimulationCase(t, c))
			r, err := oracle.Run(ctx, []oracle.Case{c})
			if err != nil {
				t.Fatal(err)
			}
			return outcome(e.Decision, e.Error) != outcome(r[0].Decision, r[0].Error)
		}
		if !disagree(c) {
			t.Logf("%s: agrees now", c.ID)
			continue
		}
		for changed := true; changed; {
			changed = false
			for _, cand := range shrink(c) {
				if disagree(cand) {
					c, changed = cand, true
					break
				}
			}
		}
		e := engine.Simulate(ctx, toSimulationCase(t, c))
		r, _ := oracle.Run(ctx, []oracle.Case{c})
		b, _ := json.Marshal(c)
		t.Logf("%s: ec2guard %s%s, oracle %s%s\n%s", c.ID, e.Decision, e.Error, r[0].Decision, r[0].Error, b)
	}
}

// shrink proposes smaller variants of a case: one statement, policy or context key fewer.
func shrink(c oracle.Case) []oracle.Case {
	var out []oracle.Case
	dropStatements := func(raw json.RawMessage, set func(json.RawMessage)) {
		var doc map[string]any
		if json.Unmarshal(raw, &doc) != nil {
			return
		}
		list, ok := doc["Statement"].([]any)
		if !ok || len(list) < 2 {
			return
		}
		for i := range list {
			d2 := map[string]any{}
			for k, v := range doc {
				d2[k] = v
			}
			l2 := append(append([]any{}, list[:i]...), list[i+1:]...)
			d2["Statement"] = l2
			b, _ := json.Marshal(d2)
			set(b)
		}
	}
	clone := func() oracle.Case {
		b, _ := json.Marshal(c)
		var d oracle.Case
		_ = json.Unmarshal(b, &d)
		return d
	}
	for i := range c.IdentityPolicies {
		d := clone()
		d.IdentityPolicies = append(d.IdentityPolicies[:i], d.IdentityPolicies[i+1:]...)
		out = append(out, d)
		dropStatements(c.IdentityPolicies[i], func(b json.RawMessage) { d := clone(); d.IdentityPolicies[i] = b; out = append(out, d) })
	}
	for _, f := range []func(*oracle.Case) *json.RawMessage{
		func(x *oracle.Case) *json.RawMessage { return &x.PermissionsBoundary },
		func(x *oracle.Case) *json.RawMessage { return &x.ResourcePolicy },
		func(x *oracle.Case) *json.RawMessage { return &x.SessionPolicy },
	} {
		if p := f(&c); len(*p) > 0 && string(*p) != "null" {
			d := clone()
			*f(&d) = nil
			out = append(out, d)
			dropStatements(*p, func(b json.RawMessage) { d := clone(); *f(&d) = b; out = append(out, d) })
		}
	}
	if len(c.SCPs) > 0 {
		d := clone()
		d.SCPs = nil
		out = append(out, d)
		for i := range c.SCPs {
			for j := range c.SCPs[i] {
				dropStatements(c.SCPs[i][j], func(b json.RawMessage) { d := clone(); d.SCPs[i][j] = b; out = append(out, d) })
			}
		}
	}
	if len(c.RCPs) > 0 {
		d := clone()
		d.RCPs = nil
		out = append(out, d)
	}
	for k := range c.Request.Context {
		d := clone()
		delete(d.Request.Context, k)
		out = append(out, d)
	}
	return out
}
