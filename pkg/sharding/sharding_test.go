package sharding

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// clock is a settable clock shared by the members of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newClient(t *testing.T, funcs *interceptor.Funcs) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(s)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func member(t *testing.T, c client.Client, clk *clock, id string) *Member {
	t.Helper()
	m, err := New(c, Options{Group: "disc", Identity: id, Namespace: "ec2guard", LeaseDuration: 15 * time.Second,
		RenewInterval: 5 * time.Second, HandoverDelay: 6 * time.Second, Now: clk.Now, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("secret/ns/aws-%d|us-east-1|", i)
	}
	return out
}

// Rendezvous hashing: a member that leaves moves only its keys; one that joins takes keys only for
// itself; keys spread over every member.
func TestOwnerMovesOnlyWhatMustMove(t *testing.T) {
	ks := keys(600)
	three := []string{"a", "b", "c"}
	per := map[string]int{}
	for _, k := range ks {
		per[Owner(three, k)]++
	}
	for _, m := range three {
		if per[m] < 100 {
			t.Errorf("member %s owns %d of 600 keys: %v", m, per[m], per)
		}
	}
	for _, k := range ks {
		before := Owner(three, k)
		if after := Owner([]string{"a", "c"}, k); before != "b" && after != before {
			t.Fatalf("key %s moved from %s to %s when b left", k, before, after)
		}
		if after := Owner([]string{"a", "b", "c", "d"}, k); after != before && after != "d" {
			t.Fatalf("key %s moved from %s to %s when d joined", k, before, after)
		}
	}
	if Owner(nil, "k") != "" {
		t.Error("a key has an owner with no members")
	}
}

// Two members tick in turn as the clock advances: at no moment do both own a key, and after the
// handover delay every key is owned by exactly one of them.
func TestHandoverNeverOverlaps(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	c := newClient(t, nil)
	ctx := context.Background()
	a := member(t, c, clk, "a")
	ks := keys(200)
	a.tick(ctx)
	if a.Owns(ks[0]) {
		t.Fatal("a member owns keys before its membership held for the handover delay")
	}
	for range 3 {
		clk.Add(5 * time.Second)
		a.tick(ctx)
	}
	for _, k := range ks {
		if !a.Owns(k) {
			t.Fatalf("a alone does not own %s", k)
		}
	}
	b := member(t, c, clk, "b")
	check := func(step string) {
		for _, k := range ks {
			if a.Owns(k) && b.Owns(k) {
				t.Fatalf("%s: both members own %s", step, k)
			}
		}
	}
	for i := range 6 {
		b.tick(ctx)
		check(fmt.Sprintf("step %d after b", i))
		clk.Add(2500 * time.Millisecond)
		a.tick(ctx)
		check(fmt.Sprintf("step %d after a", i))
		clk.Add(2500 * time.Millisecond)
	}
	owned := map[string]int{}
	for _, k := range ks {
		switch {
		case a.Owns(k):
			owned["a"]++
		case b.Owns(k):
			owned["b"]++
		default:
			t.Fatalf("nobody owns %s after the handover", k)
		}
	}
	if owned["a"] == 0 || owned["b"] == 0 {
		t.Errorf("after the handover: %v", owned)
	}
}

// A member that stops renewing its Lease (it is stuck or partitioned) loses its keys to the others
// once the Lease expires, and no longer claims them itself.
func TestExpiredMemberFencesItselfAndIsReplaced(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	fail := false
	var mu sync.Mutex
	funcs := &interceptor.Funcs{Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
		mu.Lock()
		defer mu.Unlock()
		if fail && obj.GetName() == LeaseName("disc", "a") {
			return errors.New("injected: API server unreachable")
		}
		return c.Update(ctx, obj, opts...)
	}}
	c := newClient(t, funcs)
	ctx := context.Background()
	a, b := member(t, c, clk, "a"), member(t, c, clk, "b")
	for range 4 {
		a.tick(ctx)
		b.tick(ctx)
		clk.Add(5 * time.Second)
	}
	ks := keys(100)
	var ofA []string
	for _, k := range ks {
		if a.Owns(k) {
			ofA = append(ofA, k)
		}
	}
	if len(ofA) == 0 {
		t.Fatal("a owns nothing before the fault")
	}
	mu.Lock()
	fail = true
	mu.Unlock()
	for range 5 {
		a.tick(ctx)
		b.tick(ctx)
		clk.Add(5 * time.Second)
	}
	a.tick(ctx)
	b.tick(ctx)
	for _, k := range ofA {
		if a.Owns(k) {
			t.Fatalf("a still owns %s after failing to renew for longer than its lease", k)
		}
		if !b.Owns(k) {
			t.Fatalf("b did not take over %s", k)
		}
	}
}

func TestReleaseDeletesTheLease(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	c := newClient(t, nil)
	a := member(t, c, clk, "a")
	a.tick(context.Background())
	a.release()
	var l coordinationv1.LeaseList
	if err := c.List(context.Background(), &l); err != nil || len(l.Items) != 0 {
		t.Errorf("leases after release: %d (%v)", len(l.Items), err)
	}
	if a.Owns("k") {
		t.Error("a released member owns a key")
	}
}

func TestOptionsChecked(t *testing.T) {
	c := newClient(t, nil)
	for _, o := range []Options{
		{Identity: "a", Namespace: "n"},
		{Group: "g", Identity: "a", Namespace: "n", LeaseDuration: time.Second, RenewInterval: 2 * time.Second},
		{Group: "g", Identity: "a", Namespace: "n", RenewInterval: 5 * time.Second, HandoverDelay: 4 * time.Second},
	} {
		if _, err := New(c, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// OnChange fires when ownership may change, not on every renewal.
func TestOnChangeOnlyOnChanges(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000, 0)}
	c := newClient(t, nil)
	calls := 0
	a, err := New(c, Options{Group: "disc", Identity: "a", Namespace: "ec2guard", Now: clk.Now, Log: logr.Discard(),
		OnChange: func() { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a.tick(ctx) // first membership read
	clk.Add(DefaultRenewInterval)
	a.tick(ctx) // the handover delay (6 s) has not ended yet
	clk.Add(DefaultRenewInterval)
	a.tick(ctx) // it has: a takes its keys
	n := calls
	for range 5 {
		clk.Add(DefaultRenewInterval)
		a.tick(ctx)
	}
	if n != 2 || calls != n {
		t.Errorf("OnChange called %d times while joining and %d more while nothing changed; want 2 and 0", n, calls-n)
	}
}
