package scale

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/ec2sim"
)

var fleetFlag = flag.String("fleet", "small", "fleet size of BenchmarkFleet: small (500 Upstreams, 100 groups, 10,000 instances) or full (5,000, 1,000, 100,000)")

var profileDir = flag.String("profile", "", "directory where BenchmarkFleet saves a CPU profile of the discoverer per window (cpu-<n>-<phase>.pprof; go tool pprof reads them); empty: none")

var sizes = map[string]size{
	"small": {Name: "small", Upstreams: 500, Groups: 100, Instances: 10_000, Namespaces: 20, Interval: 30 * time.Second, Churn: 0.01},
	"full":  {Name: "full", Upstreams: 5_000, Groups: 1_000, Instances: 100_000, Namespaces: 100, Interval: 30 * time.Second, Churn: 0.01},
}

// row is one line of the per-refresh table.
type row struct {
	phase                     string
	wall                      time.Duration
	refreshes, groups         float64
	meanRefresh               time.Duration
	calls, pages, throttled   int64
	retries                   int64
	cpu                       time.Duration
	heapMiB, rssMiB, peakMiB  float64
	writes                    float64
	propP50, propMax          time.Duration
	propagated, propagateWant int
}

func rowOf(phase string, groups int, a, b sample, simA, simB ec2sim.Stats) row {
	r := row{phase: phase, wall: b.at.Sub(a.at), refreshes: b.refreshes - a.refreshes, groups: float64(groups),
		calls: simB.DescribeCalls - simA.DescribeCalls, pages: simB.Pages - simA.Pages, throttled: simB.Throttled - simA.Throttled,
		retries: simB.Retries - simA.Retries,
		cpu:     b.CPU - a.CPU, heapMiB: b.heapInuse / (1 << 20), rssMiB: float64(b.RSSBytes) / (1 << 20), peakMiB: float64(b.PeakRSSByte) / (1 << 20),
		writes: b.writes - a.writes}
	if n := b.durationCount - a.durationCount; n > 0 {
		r.meanRefresh = time.Duration((b.durationSum - a.durationSum) / n * float64(time.Second))
	}
	return r
}

// BenchmarkFleet measures the discoverer on a fleet (make bench-discovery; -fleet=full for the
// whole size): the initial publication, steady-state refreshes, refreshes with 1% of the instances
// retagged per interval, and one credential group throttled. Ratios are against the interval and
// against a write baseline measured in the same run. It runs once whatever b.N is.
func BenchmarkFleet(b *testing.B) {
	s, ok := sizes[*fleetFlag]
	if !ok {
		b.Fatalf("-fleet=%s: want small or full", *fleetFlag)
	}
	if b.N > 1 {
		b.Skip("runs once: use -benchtime=1x")
	}
	b.Logf("fleet %s: %d Upstreams, %d credential groups, %d instances, interval %s", s.Name, s.Upstreams, s.Groups, s.Instances, s.Interval)
	setup := time.Now()
	f := newFleet(b, s, ec2sim.Options{TLS: true})
	b.Logf("fleet created in %s", time.Since(setup).Round(time.Second))
	floor := writeFloor(b, f, 2000)

	var extra []string
	pprofURL := ""
	if *profileDir != "" {
		port := binproc.FreePort(b)
		extra = append(extra, fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", port))
		pprofURL = fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile", port)
	}
	p := f.startDiscoverer(b, extra...)
	var rows []row
	a, simA := p.read(b), f.sim.Stats()
	f.waitPublished(b, 30*time.Minute)
	bb, simB := p.read(b), f.sim.Stats()
	rows = append(rows, rowOf("initial publication", s.Groups, a, bb, simA, simB))

	window := func(phase string, before func() []moved) {
		var moves []moved
		if before != nil {
			moves = before()
		}
		a, simA := p.read(b), f.sim.Stats()
		profiled := make(chan struct{})
		if pprofURL != "" {
			go func() {
				defer close(profiled)
				saveProfile(b, pprofURL, s.Interval*2/3, filepath.Join(*profileDir, fmt.Sprintf("cpu-%d-%s.pprof", len(rows), strings.ReplaceAll(phase, " ", "_"))))
			}()
		} else {
			close(profiled)
		}
		var prop []time.Duration
		if len(moves) > 0 {
			prop = f.propagation(b, moves, 3*s.Interval)
		}
		// A window is one interval after the last propagation check (or one interval).
		for time.Since(a.at) < s.Interval {
			time.Sleep(200 * time.Millisecond)
		}
		bb, simB := p.read(b), f.sim.Stats()
		<-profiled
		r := rowOf(phase, s.Groups, a, bb, simA, simB)
		if len(prop) > 0 {
			slices.Sort(prop)
			r.propP50, r.propMax = prop[len(prop)/2], prop[len(prop)-1]
		}
		r.propagated, r.propagateWant = len(prop), min(len(moves), 50)
		rows = append(rows, r)
	}
	window("steady", nil)
	window("steady", nil)
	window("churn 1%", func() []moved { return f.churn(b, s.Churn) })
	window("churn 1%", func() []moved { return f.churn(b, s.Churn) })
	f.sim.ThrottleAll(f.groups[0].accessKey, true)
	window("1 group throttled + churn 1%", func() []moved { return f.churn(b, s.Churn, 0) })
	f.sim.ThrottleAll(f.groups[0].accessKey, false)

	printTable(os.Stdout, s, floor, rows)
}

// saveProfile saves a CPU profile of the discoverer over d to path (logged, not fatal, on error:
// the profile is a diagnostic, the table is the result).
func saveProfile(tb testing.TB, url string, d time.Duration, path string) {
	c := http.Client{Timeout: d + time.Minute}
	resp, err := c.Get(fmt.Sprintf("%s?seconds=%d", url, int(d.Seconds())))
	if err != nil {
		tb.Logf("CPU profile: %v", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Logf("CPU profile: %s", resp.Status)
		return
	}
	out, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(out, resp.Body)
		err = errors.Join(err, out.Close())
	}
	if err != nil {
		tb.Logf("CPU profile %s: %v", path, err)
		return
	}
	tb.Logf("CPU profile of the discoverer: %s", path)
}

// propagation retags nothing itself: it waits for (a sample of) moves to show in the EndpointSlices
// of the Upstream each instance moved to, and returns the delays.
func (f *fleet) propagation(tb testing.TB, moves []moved, timeout time.Duration) []time.Duration {
	tb.Helper()
	sample := moves
	if len(sample) > 50 {
		step := len(sample) / 50
		var s []moved
		for i := 0; i < len(sample) && len(s) < 50; i += step {
			s = append(s, sample[i])
		}
		sample = s
	}
	uidOf := map[string]string{}
	f.mu.Lock()
	for uid, name := range f.uids {
		uidOf[name] = uid
	}
	f.mu.Unlock()
	var out []time.Duration
	pending := slices.Clone(sample)
	deadline := time.Now().Add(timeout)
	for len(pending) > 0 && time.Now().Before(deadline) {
		var still []moved
		for _, m := range pending {
			var l discoveryv1.EndpointSliceList
			if err := f.client.List(context.Background(), &l, client.MatchingLabels{discovery.LabelUpstreamUID: uidOf[m.to]}); err != nil {
				tb.Fatal(err)
			}
			found := false
			for _, s := range l.Items {
				for _, e := range s.Endpoints {
					found = found || e.Addresses[0] == m.ip
				}
			}
			if found {
				out = append(out, time.Since(m.at))
			} else {
				still = append(still, m)
			}
		}
		pending = still
		time.Sleep(250 * time.Millisecond)
	}
	return out
}

// writeFloor is the baseline: how fast a plain client with the discoverer's default rate limits
// creates n small objects on this API server, in writes per second.
func writeFloor(tb testing.TB, f *fleet, n int) float64 {
	tb.Helper()
	cfg := rest.CopyConfig(f.env.Config)
	cfg.QPS, cfg.Burst = kubeconfig.DefaultQPS, kubeconfig.DefaultBurst
	c, err := client.New(cfg, client.Options{Scheme: f.env.Client.Scheme()})
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	parallel(tb, n, func(i int) error {
		return c.Create(context.Background(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "fleet-000", Name: fmt.Sprintf("floor-%05d", i)},
			Data:       map[string]string{"k": "v"},
		})
	})
	return float64(n) / time.Since(start).Seconds()
}

func printTable(w io.Writer, s size, floor float64, rows []row) {
	fmt.Fprintf(w, "\nfleet %s: %d EC2 Upstreams, %d credential groups, %d instances, interval %s, 2%% of instances stopped\n",
		s.Name, s.Upstreams, s.Groups, s.Instances, s.Interval)
	fmt.Fprintf(w, "baseline: a plain client at the discoverer's rate limits (%d QPS, burst %d) writes %.0f objects/s here\n\n",
		kubeconfig.DefaultQPS, kubeconfig.DefaultBurst, floor)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\twall s\twall/interval\tgroup refreshes\tmean refresh ms\tDescribeInstances calls\tpages\tthrottled\tsent again\tCPU ms\theap MiB\tRSS MiB\tpeak RSS MiB\tkube writes\twrites/s vs baseline\tpropagation p50 s\tmax s\tseen\t")
	for _, r := range rows {
		ratio := "-"
		if r.writes > 0 {
			ratio = fmt.Sprintf("%.2f", r.writes/r.wall.Seconds()/floor)
		}
		prop50, propMax, seen := "-", "-", "-"
		if r.propagateWant > 0 {
			prop50, propMax = fmt.Sprintf("%.1f", r.propP50.Seconds()), fmt.Sprintf("%.1f", r.propMax.Seconds())
			seen = fmt.Sprintf("%d/%d", r.propagated, r.propagateWant)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.2f\t%.0f/%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t\n",
			r.phase, r.wall.Seconds(), r.wall.Seconds()/s.Interval.Seconds(), r.refreshes, r.groups, r.meanRefresh.Milliseconds(),
			r.calls, r.pages, r.throttled, r.retries, r.cpu.Milliseconds(), r.heapMiB, r.rssMiB, r.peakMiB, r.writes, ratio, prop50, propMax, seen)
	}
	_ = tw.Flush()
}
