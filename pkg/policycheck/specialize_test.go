package policycheck

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/iamdiff"
)

// requestVariants returns the request and variants of it that differ only in context (what a
// specialised query leaves unknown): every region for the region keys, each key left out, no
// context at all, and a key no statement may mention.
func requestVariants(r Request) []Request {
	out := []Request{r}
	with := func(f func(map[string]any)) {
		v := r
		v.Context = maps.Clone(r.Context)
		if v.Context == nil {
			v.Context = map[string]any{}
		}
		f(v.Context)
		out = append(out, v)
	}
	for _, region := range []string{"us-east-1", "eu-west-1", "ap-south-1", "cn-north-1"} {
		with(func(c map[string]any) { c["aws:RequestedRegion"], c["ec2:Region"] = region, region })
	}
	keys := make([]string, 0, len(r.Context))
	for k := range r.Context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		with(func(c map[string]any) { delete(c, k) })
	}
	with(func(c map[string]any) { clear(c) })
	with(func(c map[string]any) { c["aws:SourceIp"] = "10.1.2.3"; c["aws:PrincipalTag/team"] = "other" })
	return out
}

// TestSpecializedMatchesGeneric checks that the queries specialised by partial evaluation give
// exactly the decisions of the generic query (decision, matched statements, findings, ignored
// keys, notes, errors) over the generated differential-test cases and context variants of each.
func TestSpecializedMatchesGeneric(t *testing.T) {
	ctx := context.Background()
	generic, err := NewEngine(ctx, WithDecisionCache(0), WithSpecialization(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// A generous budget for partial evaluation: the race detector slows it down several times.
	budget := func(c *engineConfig) { c.peBudget = 400 * time.Millisecond }
	spec, err := NewEngine(ctx, WithDecisionCache(0), WithSpecialization(1, 64), budget)
	if err != nil {
		t.Fatal(err)
	}
	if generic.spec != nil || spec.spec == nil {
		t.Fatal("WithSpecialization did not switch specialisation as asked")
	}
	n := 150
	if testing.Short() {
		n = 50
	}
	specialised, compared := 0, 0
	for _, c := range iamdiff.Generate(20261130, n) {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ParseSimulationCase(b)
		if err != nil {
			t.Fatalf("case %s: %v", c.ID, err)
		}
		ps, err := sc.PolicySet()
		if err != nil {
			continue // invalid policies never reach Evaluate
		}
		for vi, r := range requestVariants(sc.Request) {
			want, werr := generic.Evaluate(ctx, ps, r)
			got, gerr := spec.Evaluate(ctx, ps, r)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("case %s variant %d: errors differ: generic %v, specialised %v", c.ID, vi, werr, gerr)
			}
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("case %s variant %d: decisions differ\ngeneric:     %+v\nspecialised: %+v", c.ID, vi, want, got)
			}
			compared++
			if vi == 0 {
				spec.spec.wait() // the first evaluation started the build; the variants use it
			}
		}
		if p, err := prepareRequest(spec.catalog, sc.Request); err == nil {
			if q, ok := spec.spec.queries.Get(specKey(ps, p)); ok && q.pq != nil {
				specialised++
			}
		}
	}
	t.Logf("%d decisions compared; %d of %d cases specialised", compared, specialised, n)
	if specialised < n/4 {
		t.Errorf("only %d of %d cases got a specialised query: the comparison does not exercise it", specialised, n)
	}
}

// Partial evaluation runs in the background: the evaluation that triggers it is answered by the
// generic query without waiting, and later evaluations use the specialised query once it is built.
func TestSpecializationDoesNotBlockEvaluate(t *testing.T) {
	ctx := context.Background()
	// A budget no build reaches, even under the race detector: this test is about scheduling.
	budget := func(c *engineConfig) { c.peBudget = time.Minute }
	e, err := NewEngine(ctx, WithDecisionCache(0), WithSpecialization(1, 8), budget)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	e.spec.beforeBuild = func() {
		started <- struct{}{}
		<-release
	}
	ps := policySetFromText(t, benchPolicy(10))
	req := DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", "us-east-1")
	p, err := prepareRequest(e.catalog, req)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Evaluate(ctx, ps, req) // triggers the build, which is held at beforeBuild
	if err != nil || !d.IsAllowed() {
		t.Fatalf("first evaluation: %v %+v", err, d)
	}
	<-started
	if _, ok := e.spec.queries.Get(specKey(ps, p)); ok {
		t.Fatal("a query was stored before its build ran")
	}
	// While the build is held, evaluations are answered (generically) and start no second build.
	for range 3 {
		if d2, err := e.Evaluate(ctx, ps, req); err != nil || !reflect.DeepEqual(d, d2) {
			t.Fatalf("evaluation during the build: %v %+v", err, d2)
		}
	}
	// Nor does another key while the slot is taken (maxBackgroundBuilds is 1).
	other := DescribeInstancesRequest("arn:aws:iam::111122223333:user/other", "", "us-east-1")
	po, err := prepareRequest(e.catalog, other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evaluate(ctx, ps, other); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
		t.Fatal("a second build started while one was running")
	default:
	}
	close(release)
	e.spec.wait()
	if q, ok := e.spec.queries.Get(specKey(ps, p)); !ok || q.pq == nil {
		t.Fatal("no specialised query after the build")
	}
	if d3, err := e.Evaluate(ctx, ps, req); err != nil || !reflect.DeepEqual(d, d3) {
		t.Fatalf("specialised evaluation: %v %+v, want %+v", err, d3, d)
	}
	// The key that found no free slot is built on its next evaluation.
	if _, ok := e.spec.queries.Get(specKey(ps, po)); ok {
		t.Fatal("the other key was built although no slot was free")
	}
	if _, err := e.Evaluate(ctx, ps, other); err != nil {
		t.Fatal(err)
	}
	<-started
	e.spec.wait()
	if q, ok := e.spec.queries.Get(specKey(ps, po)); !ok || q.pq == nil {
		t.Fatalf("the other key was not built once the slot was free: %v %+v", ok, q)
	}
}
