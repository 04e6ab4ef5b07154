package policycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// refRego decides allow/deny only, for the condition operators benchPolicy uses.
const refRego = `package ref

default allow := false

allow if {
	not deny
	some s in data.policies[input.pid].Statement
	s.Effect == "Allow"
	stmt_ok(s)
}

deny if {
	some s in data.policies[input.pid].Statement
	s.Effect == "Deny"
	stmt_ok(s)
}

stmt_ok(s) if {
	action_ok(s.Action)
	resource_ok(s.Resource)
	every op, kv in object.get(s, "Condition", {}) {
		cond_ok(op, kv)
	}
}

action_ok(a) if { is_string(a); glob.match(lower(a), [], input.action) }
action_ok(a) if { is_array(a); some x in a; glob.match(lower(x), [], input.action) }
resource_ok(r) if r == "*"
resource_ok(r) if { is_array(r); "*" in r }

cond_ok("StringEquals", kv) if {
	every k, v in kv {
		input.ctx[lower(k)] in as_list(v)
	}
}
cond_ok("StringLike", kv) if {
	every k, v in kv {
		some p in as_list(v)
		glob.match(p, [], input.ctx[lower(k)])
	}
}
cond_ok("Bool", kv) if {
	every k, v in kv {
		input.ctx[lower(k)] in as_list(v)
	}
}
cond_ok("IpAddress", kv) if {
	every k, v in kv {
		some c in as_list(v)
		net.cidr_contains(c, input.ctx[lower(k)])
	}
}
as_list(v) := v if is_array(v)
as_list(v) := [v] if not is_array(v)
`

// BenchmarkReferenceRego is a yardstick, not ec2guard's engine: the design notes' "straightforward Rego"
// reference point (statements kept in the store as data, input pre-parsed, one decision without
// explanations, no action index) over the same policies as BenchmarkDescribeInstancesN, so that
// the engine's numbers can be read against what plain Rego costs on the same machine.
func BenchmarkReferenceRego(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 10, 100} {
		var doc any
		if err := json.Unmarshal([]byte(benchPolicy(n)), &doc); err != nil {
			b.Fatal(err)
		}
		store := inmem.NewFromObject(map[string]any{"policies": map[string]any{"p": doc}})
		pq, err := rego.New(rego.Query("data.ref.allow"), rego.Module("ref.rego", refRego), rego.Store(store)).PrepareForEval(ctx)
		if err != nil {
			b.Fatal(err)
		}
		input := ast.MustParseTerm(`{"pid":"p","action":"ec2:describeinstances","ctx":{"aws:requestedregion":"us-east-1","aws:securetransport":"true","aws:username":"gloo"}}`).Value
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil || len(rs) != 1 || rs[0].Expressions[0].Value != true {
			b.Fatalf("warm-up: %v %v", err, rs)
		}
		b.Run(fmt.Sprintf("statements=%d", n), func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := pq.Eval(ctx, rego.EvalParsedInput(input)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
