package scale

import (
	"context"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/ec2sim"
)

// TestFleet checks, at a small scale, the counts the fleet benchmark reports: exactly one
// DescribeInstances request per credential group and refresh (never per Upstream, never sent
// twice), no Kubernetes write in steady state, writes only for the Upstreams a tag change moved
// instances between, and a throttled group that delays only itself while keeping its last
// endpoints. ec2sim serves HTTPS, as EC2 does (over plain HTTP the SDK re-sends some requests:
// see package ec2sim).
func TestFleet(t *testing.T) {
	s := size{Name: "test", Upstreams: 40, Groups: 8, Instances: 800, Namespaces: 4, Interval: 3 * time.Second}
	f := newFleet(t, s, ec2sim.Options{TLS: true})
	p := f.startDiscoverer(t)
	f.waitPublished(t, 3*time.Minute)

	// Steady state: two more passes over every group.
	s0 := p.read(t)
	sim0 := f.sim.Stats()
	s1 := p.waitRefreshes(t, s0, float64(2*s.Groups), 2*time.Minute)
	sim1 := f.sim.Stats()
	refreshes := s1.refreshes - s0.refreshes
	if refreshes < float64(2*s.Groups) {
		t.Fatalf("%v refreshes in two intervals, want at least %d", refreshes, 2*s.Groups)
	}
	t.Logf("steady: %v refreshes, %v writes, %d pages answered, %v attempts", refreshes, s1.writes-s0.writes, sim1.Pages-sim0.Pages, s1.describeCalls-s0.describeCalls)
	if w := s1.writes - s0.writes; w != 0 {
		t.Errorf("steady state: %v Kubernetes writes, want 0", w)
	}
	// Each group has 100 instances: one page per refresh. The discoverer's own count of attempts
	// and ec2sim's count of answered pages agree (no throttling here), no request was sent again,
	// and per group, requests equal refreshes exactly (since the start: the initial publication
	// included); nothing grows with the number of Upstreams (5 per group).
	pages := float64(sim1.Pages - sim0.Pages)
	calls := s1.describeCalls - s0.describeCalls
	if calls != pages {
		t.Errorf("steady state: %v DescribeInstances attempts counted by the discoverer, %v pages answered by ec2sim", calls, pages)
	}
	oneCallPerRefresh := func(when string) {
		t.Helper()
		if st := f.sim.Stats(); st.Retries != 0 || st.Throttled != 0 {
			t.Errorf("%s: ec2sim saw %d requests sent again and %d throttled, want none", when, st.Retries, st.Throttled)
		}
		if off := f.waitOneCallPerRefresh(t, p, time.Minute); len(off) != 0 {
			t.Errorf("%s: groups (index: DescribeInstances requests minus refreshes) %v, want one request per refresh", when, off)
		}
	}
	oneCallPerRefresh("steady state")

	// Churn: 5% of the instances move to another Upstream of their group.
	moves := f.churn(t, 0.05)
	affected := map[string]bool{}
	for _, m := range moves {
		affected[m.to] = true
	}
	before := p.read(t)
	f.waitPublished(t, 2*time.Minute)
	after := p.waitRefreshes(t, before, float64(s.Groups), time.Minute)
	w := after.writes - before.writes
	t.Logf("churn: %d instances moved into %d Upstreams, %v writes", len(moves), len(affected), w)
	// Every move also changes the Upstream it left; at most one slice and one annotation write per
	// affected Upstream, since each Upstream has a single slice here.
	if w == 0 || w > float64(4*len(moves)) || w > float64(4*len(affected)+4*len(moves)) {
		t.Errorf("churn of %d instances (%d Upstreams gained one): %v writes", len(moves), len(affected), w)
	}
	oneCallPerRefresh("after churn")

	// A throttled group: its last endpoints stay, the others keep refreshing and publishing.
	f.sim.ThrottleAll(f.groups[0].accessKey, true)
	t0 := p.read(t)
	t1 := p.waitRefreshes(t, t0, float64(2*s.Groups), 2*time.Minute)
	t.Logf("throttled: %v throttling answers, %v refreshes, %v failed", t1.throttles-t0.throttles, t1.refreshes-t0.refreshes, t1.refreshErrors-t0.refreshErrors)
	if t1.throttles == t0.throttles {
		t.Error("no throttling answer counted for the throttled group")
	}
	if ok := (t1.refreshes - t1.refreshErrors) - (t0.refreshes - t0.refreshErrors); ok < float64(s.Groups-1) {
		t.Errorf("with group 0 throttled, %v successful refreshes of the other %d groups", ok, s.Groups-1)
	}
	got, err := f.published(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if wrong, example := diff(got, f.expected()); wrong != 0 {
		t.Errorf("with group 0 throttled: %d Upstreams changed (%s); the throttled group must keep its endpoints", wrong, example)
	}
	// The other groups' changes propagate while group 0 is throttled...
	f.churn(t, 0.05, 0)
	f.waitPublished(t, 2*time.Minute)
	// ...and group 0 catches up once EC2 answers again.
	f.sim.ThrottleAll(f.groups[0].accessKey, false)
	f.churn(t, 0.05)
	f.waitPublished(t, 2*time.Minute)
}
