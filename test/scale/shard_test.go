package scale

import (
	"fmt"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/awsfault"
	"github.com/ec2guard/ec2guard/test/harness/ec2sim"
)

// TestShardedFailover runs three discoverer replicas with --sharding=leases, each reaching EC2
// through its own proxy so the test sees which replica refreshed which credential group. Every
// group is refreshed by exactly one replica; when one replica is killed (no clean shutdown), its
// groups — and only its groups — move to the others, every Upstream keeps its endpoints
// throughout, and changes in the moved groups are published again.
func TestShardedFailover(t *testing.T) {
	s := size{Name: "sharded", Upstreams: 60, Groups: 30, Instances: 1500, Namespaces: 6, Interval: 2 * time.Second}
	f := newFleet(t, s, ec2sim.Options{RefillRate: -1})
	const lease, renew = 6 * time.Second, 2 * time.Second
	var proxies []*awsfault.Proxy
	var procs []*proc
	for i := range 3 {
		p, err := awsfault.Start(f.sim.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		proxies = append(proxies, p)
		procs = append(procs, f.startDiscovererAt(t, p.URL(), "--sharding=leases", fmt.Sprintf("--shard-identity=replica-%d", i),
			"--shard-namespace=default", "--shard-lease-duration="+lease.String(), "--shard-renew-interval="+renew.String()))
	}
	f.waitPublished(t, 3*time.Minute)
	// The replicas started one after the other: let the last joins' handovers finish.
	time.Sleep(lease)

	// owners refreshes for a few intervals and returns, per group's access key, the replicas
	// (indexes) that listed it.
	owners := func(live []int) map[string][]int {
		before := make([]map[string]int, len(proxies))
		for _, i := range live {
			before[i] = proxies[i].DescribeCallsByKey()
		}
		time.Sleep(4 * s.Interval)
		out := map[string][]int{}
		for _, i := range live {
			for key, n := range proxies[i].DescribeCallsByKey() {
				if n > before[i][key] {
					out[key] = append(out[key], i)
				}
			}
		}
		return out
	}
	check := func(when string, got map[string][]int, live []int) map[string]int {
		owner := map[string]int{}
		perReplica := map[int]int{}
		for _, g := range f.groups {
			r := got[g.accessKey]
			if len(r) != 1 {
				t.Errorf("%s: group %d was refreshed by replicas %v, want exactly one", when, g.n, r)
				continue
			}
			owner[g.accessKey] = r[0]
			perReplica[r[0]]++
		}
		for _, i := range live {
			if perReplica[i] == 0 {
				t.Errorf("%s: replica %d refreshed no group (%v)", when, i, perReplica)
			}
		}
		t.Logf("%s: groups per replica %v", when, perReplica)
		return owner
	}
	before := check("three replicas", owners([]int{0, 1, 2}), []int{0, 1, 2})

	procs[1].Kill()
	got, err := f.published(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if wrong, example := diff(got, f.expected()); wrong != 0 {
		t.Errorf("right after replica 1 died, %d Upstreams lost endpoints (%s)", wrong, example)
	}
	// Changes everywhere, including the dead replica's groups, are published once they moved.
	f.churn(t, 0.05)
	f.waitPublished(t, 2*time.Minute)

	time.Sleep(lease)
	after := check("replica 1 killed", owners([]int{0, 2}), []int{0, 2})
	for key, was := range before {
		if now, ok := after[key]; ok && was != 1 && now != was {
			t.Errorf("group %s moved from live replica %d to %d: only the dead replica's groups may move", key, was, now)
		}
	}
}
