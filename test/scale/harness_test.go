// Package scale runs the real discoverer binary against the real kube-apiserver and an in-process
// EC2 API server (test/harness/ec2sim) holding a whole fleet: many EC2 Upstreams over many
// credential groups. TestFleet asserts the harness's counts at small scale (calls, pages, writes,
// endpoints); BenchmarkFleet (make bench-discovery) measures a refresh of a large fleet.
package scale

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/ec2guardproc"
	"github.com/ec2guard/ec2guard/test/harness/ec2sim"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

const region = "us-east-1"

// size is a fleet: Upstreams spread evenly over credential groups (one secret each, in the
// Upstreams' own namespace), Instances spread evenly over the groups, each running instance
// selected by exactly one Upstream of its group (tag app=svc-N).
type size struct {
	Name       string
	Upstreams  int
	Groups     int
	Instances  int
	Namespaces int
	Interval   time.Duration
	// Churn is the fraction of instances retagged per churn window.
	Churn float64
}

func (s size) perGroup() int     { return s.Upstreams / s.Groups }
func (s size) instPerGroup() int { return s.Instances / s.Groups }

// group is one credential group of the fleet.
type group struct {
	n         int
	namespace string
	secret    string
	accessKey string
	instances []ec2sim.Instance
}

// fleet is a running scenario.
type fleet struct {
	size   size
	env    *k8senv.Env
	sim    *ec2sim.Server
	client client.Client
	groups []*group
	// uids maps an Upstream's UID to its "group/svc" name.
	uids map[string]string
	rng  *rand.Rand
	mu   sync.Mutex
}

func accessKey(g int) string { return fmt.Sprintf("AKIA%016d", g) }

// label is the group's label in the discoverer's metrics (discovery.GroupKey's String).
func (g *group) label() string {
	return discovery.GroupKey{Secret: types.NamespacedName{Namespace: g.namespace, Name: g.secret}, Region: region}.String()
}

func svcName(g, j int) string { return fmt.Sprintf("g%04d-svc-%d", g, j) }

// newFleet starts the API server and ec2sim and creates the fleet's namespaces, secrets and
// Upstreams through a client with a generous rate limit.
func newFleet(tb testing.TB, s size, simOpts ec2sim.Options) *fleet {
	tb.Helper()
	env := k8senv.Start(tb, k8senv.Options{})
	sim := ec2sim.Start(simOpts)
	tb.Cleanup(sim.Close)
	if pem := sim.CertPEM(); pem != nil {
		// The discoverer (a child process) trusts ec2sim's certificate as its only root.
		ca := filepath.Join(tb.TempDir(), "ec2sim-ca.pem")
		if err := os.WriteFile(ca, pem, 0o600); err != nil {
			tb.Fatal(err)
		}
		tb.Setenv("SSL_CERT_FILE", ca)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	c, err := client.New(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		tb.Fatal(err)
	}
	f := &fleet{size: s, env: env, sim: sim, client: c, uids: map[string]string{}, rng: rand.New(rand.NewPCG(1, 2))}
	ip := 0
	for g := range s.Groups {
		gr := &group{n: g, namespace: fmt.Sprintf("fleet-%03d", g%s.Namespaces), secret: fmt.Sprintf("aws-g%04d", g), accessKey: accessKey(g)}
		for i := range s.instPerGroup() {
			ip++
			state := "running"
			if i%50 == 49 {
				state = "stopped"
			}
			gr.instances = append(gr.instances, ec2sim.Instance{
				ID: fmt.Sprintf("i-%08x%09x", g, i), State: state, AZ: region + "a",
				PrivateIP: fmt.Sprintf("10.%d.%d.%d", ip>>16&255, ip>>8&255, ip&255),
				Tags:      map[string]string{"app": svcName(g, i%s.perGroup()), "fleet": "scale"},
			})
		}
		sim.AddAccount(gr.accessKey, fmt.Sprintf("arn:aws:iam::%012d:user/fleet-%d", 100000000000+g, g), gr.instances)
		f.groups = append(f.groups, gr)
	}
	ctx := context.Background()
	for n := range s.Namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fleet-%03d", n)}}
		if err := c.Create(ctx, ns); err != nil {
			tb.Fatal(err)
		}
	}
	parallel(tb, s.Groups, func(g int) error {
		gr := f.groups[g]
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: gr.namespace, Name: gr.secret},
			Type:       corev1.SecretTypeOpaque,
			StringData: map[string]string{"aws_access_key_id": gr.accessKey, "aws_secret_access_key": strings.Repeat("s", 40)},
		}
		if err := c.Create(ctx, sec); err != nil {
			return err
		}
		for j := range s.perGroup() {
			u := upstream(gr, j)
			if err := c.Create(ctx, u); err != nil {
				return err
			}
			f.mu.Lock()
			f.uids[string(u.GetUID())] = svcName(g, j)
			f.mu.Unlock()
		}
		return nil
	})
	return f
}

func upstream(gr *group, j int) *unstructured.Unstructured {
	u := discovery.NewUpstreamObject()
	u.SetNamespace(gr.namespace)
	u.SetName(svcName(gr.n, j))
	u.Object["spec"] = map[string]any{"awsEc2": map[string]any{
		"region":    region,
		"secretRef": map[string]any{"name": gr.secret, "namespace": gr.namespace},
		"filters":   []any{map[string]any{"kvPair": map[string]any{"key": "app", "value": svcName(gr.n, j)}}},
		"port":      int64(8080),
	}}
	return u
}

// parallel runs do(0..n-1) on 16 workers and fails tb on the first error.
func parallel(tb testing.TB, n int, do func(i int) error) {
	tb.Helper()
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := do(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// expected is, per Upstream name, the private IPs of the running instances it selects.
func (f *fleet) expected() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, gr := range f.groups {
		for j := range f.size.perGroup() {
			out[svcName(gr.n, j)] = map[string]bool{}
		}
		for _, inst := range gr.instances {
			if inst.State == "running" {
				out[inst.Tags["app"]][inst.PrivateIP] = true
			}
		}
	}
	return out
}

// published reads every managed EndpointSlice and returns, per Upstream name, the addresses.
func (f *fleet) published(ctx context.Context) (map[string]map[string]bool, error) {
	var l discoveryv1.EndpointSliceList
	if err := f.client.List(ctx, &l, client.MatchingLabels{discoveryv1.LabelManagedBy: discovery.ManagedBy}); err != nil {
		return nil, fmt.Errorf("list endpointslices: %w", err)
	}
	out := map[string]map[string]bool{}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range l.Items {
		name, ok := f.uids[s.Labels[discovery.LabelUpstreamUID]]
		if !ok {
			continue
		}
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		for _, e := range s.Endpoints {
			out[name][e.Addresses[0]] = true
		}
	}
	return out, nil
}

// diff counts the Upstreams whose published addresses differ from the expected ones.
func diff(got, want map[string]map[string]bool) (wrong int, example string) {
	for name, w := range want {
		g := got[name]
		same := len(g) == len(w)
		for ip := range w {
			same = same && g[ip]
		}
		if !same {
			if wrong == 0 {
				example = fmt.Sprintf("%s: published %d addresses, want %d", name, len(g), len(w))
			}
			wrong++
		}
	}
	return wrong, example
}

// waitPublished polls until every Upstream's slices hold exactly the expected addresses.
func (f *fleet) waitPublished(tb testing.TB, timeout time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	want := f.expected()
	var example string
	wrong := -1
	for time.Since(start) < timeout {
		got, err := f.published(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if wrong, example = diff(got, want); wrong == 0 {
			return time.Since(start)
		}
		time.Sleep(500 * time.Millisecond)
	}
	tb.Fatalf("after %s, %d Upstreams are not published as expected (e.g. %s)", timeout, wrong, example)
	return 0
}

// moved is one retagged instance.
type moved struct {
	ip, to string
	at     time.Time
}

// churn retags a fraction of the running instances of every group (but those in skip) to another
// Upstream of the same group.
func (f *fleet) churn(tb testing.TB, frac float64, skip ...int) []moved {
	tb.Helper()
	var out []moved
	per := f.size.perGroup()
	if per < 2 {
		tb.Fatal("churn needs at least two Upstreams per group")
	}
	for _, gr := range f.groups {
		if slices.Contains(skip, gr.n) {
			continue
		}
		n := int(float64(len(gr.instances))*frac + 0.5)
		for range n {
			inst := &gr.instances[f.rng.IntN(len(gr.instances))]
			if inst.State != "running" {
				continue
			}
			cur := inst.Tags["app"]
			var next string
			for next = cur; next == cur; {
				next = svcName(gr.n, f.rng.IntN(per))
			}
			inst.Tags = map[string]string{"app": next, "fleet": "scale"}
			if err := f.sim.SetTags(gr.accessKey, inst.ID, inst.Tags); err != nil {
				tb.Fatal(err)
			}
			out = append(out, moved{ip: inst.PrivateIP, to: next, at: time.Now()})
		}
	}
	return out
}

// waitOneCallPerRefresh waits until every group has been seen with exactly as many
// DescribeInstances requests (ec2sim's count by access key, since the fleet was created) as
// finished refreshes (the discoverer's refreshes_total): one request per refresh. A group is
// one request ahead while its refresh is in flight, so each group is sampled until it is seen
// idle. It returns, per group that was never seen equal, requests minus refreshes (its lowest).
// It only holds while no page needs more than one attempt (no throttling).
func (f *fleet) waitOneCallPerRefresh(tb testing.TB, p *proc, timeout time.Duration) map[int]float64 {
	tb.Helper()
	pending := map[int]float64{}
	for _, g := range f.groups {
		pending[g.n] = math.Inf(1)
	}
	for deadline := time.Now().Add(timeout); len(pending) > 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		m, err := binproc.Scrape(p.MetricsURL)
		if err != nil {
			tb.Fatal(err)
		}
		for _, g := range f.groups {
			low, ok := pending[g.n]
			if !ok {
				continue
			}
			// Refreshes first: a request made after the scrape can only raise the difference.
			refreshes := m.Sum("ec2guard_discoverer_refreshes_total", map[string]string{"group": g.label()})
			d := float64(f.sim.DescribeCallsOf(g.accessKey)) - refreshes
			if d == 0 {
				delete(pending, g.n)
			} else {
				pending[g.n] = min(low, d)
			}
		}
	}
	return pending
}

// proc is the discoverer process.
type proc struct{ *ec2guardproc.Process }

// startDiscoverer runs the real binary with the fleet's endpoint and interval; audit and reports
// are off (ec2sim has no IAM), leader election off (one replica).
func (f *fleet) startDiscoverer(tb testing.TB, extra ...string) *proc {
	tb.Helper()
	return f.startDiscovererAt(tb, f.sim.URL(), extra...)
}

// startDiscovererAt is startDiscoverer with AWS at endpoint (a proxy to ec2sim).
func (f *fleet) startDiscovererAt(tb testing.TB, endpoint string, extra ...string) *proc {
	tb.Helper()
	args := append([]string{"--interval=" + f.size.Interval.String(), "--iam-audit=false", "--reports=false", "--log-format=json"}, extra...)
	return &proc{ec2guardproc.StartDiscoverer(tb, f.env, endpoint, args...)}
}

// sample is one reading of the discoverer's counters and resources.
type sample struct {
	at                         time.Time
	refreshes, refreshErrors   float64
	describeCalls, throttles   float64
	writes                     float64
	durationSum, durationCount float64
	heapInuse                  float64
	binproc.Usage
}

// read scrapes /metrics and /proc.
func (p *proc) read(tb testing.TB) sample {
	tb.Helper()
	s := sample{at: time.Now()}
	m, err := binproc.Scrape(p.MetricsURL)
	if err != nil {
		tb.Fatal(err)
	}
	s.refreshes = m.Sum("ec2guard_discoverer_refreshes_total", nil)
	s.refreshErrors = s.refreshes - m.Sum("ec2guard_discoverer_refreshes_total", map[string]string{"result": "success"})
	s.describeCalls = m.Sum("ec2guard_discoverer_aws_calls_total", map[string]string{"api": "ec2:DescribeInstances"})
	s.throttles = m.Sum("ec2guard_discoverer_aws_throttles_total", nil)
	s.writes = m.Sum("ec2guard_discoverer_kube_writes_total", nil)
	s.heapInuse = m.Sum("go_memstats_heap_inuse_bytes", nil)
	count, sum, _ := m.Histogram("ec2guard_discoverer_refresh_duration_seconds", nil)
	s.durationCount, s.durationSum = float64(count), sum
	if s.Usage, err = p.Usage(); err != nil {
		tb.Fatal(err)
	}
	return s
}

// waitRefreshes waits until the refresh counter grew by n since from (or the timeout passed).
func (p *proc) waitRefreshes(tb testing.TB, from sample, n float64, timeout time.Duration) sample {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.read(tb)
		if s.refreshes-from.refreshes >= n || time.Now().After(deadline) {
			return s
		}
		time.Sleep(250 * time.Millisecond)
	}
}
