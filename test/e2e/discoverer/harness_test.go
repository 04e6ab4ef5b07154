package discoverer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/discovery/discoverytest"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// createAndApply creates objs through the API server, in order, then applies manifest with
// kubectl as the tests' Upstreams are written by users.
func createAndApply(t *testing.T, ctx context.Context, env *k8senv.Env, manifest string, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, err := env.KubectlWithInput(ctx, strings.NewReader(manifest), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
	}
}

// countingHTTP counts the DescribeInstances requests (not dry runs) that leave the discoverer,
// and every AWS request by the access key id that signed it.
type countingHTTP struct {
	next     aws.HTTPClient
	describe atomic.Int64

	mu    sync.Mutex
	byKey map[string]int
}

var signingKey = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

// signedWith returns how many requests the access key id signed.
func (c *countingHTTP) signedWith(keyID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byKey[keyID]
}

func (c *countingHTTP) Do(req *http.Request) (*http.Response, error) {
	if m := signingKey.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
		c.mu.Lock()
		if c.byKey == nil {
			c.byKey = map[string]int{}
		}
		c.byKey[m[1]]++
		c.mu.Unlock()
	}
	if req.Body != nil {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, fmt.Errorf("counting transport: read request body: %w", err)
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		s := string(body)
		if strings.Contains(s, "Action=DescribeInstances") && !strings.Contains(s, "DryRun=true") {
			c.describe.Add(1)
		}
	}
	return c.next.Do(req)
}

// reports collects the discoverer's refresh and regroup reports and lets the test wait for one.
type reports struct {
	mu      sync.Mutex
	refresh []discovery.RefreshReport
	regroup []discovery.RegroupReport
	changed chan struct{}
}

func newReports() *reports { return &reports{changed: make(chan struct{})} }

func (r *reports) hooks() discovery.Hooks {
	return discovery.Hooks{
		OnRefresh: func(rep discovery.RefreshReport) {
			r.mu.Lock()
			r.refresh = append(r.refresh, rep)
			r.notifyLocked()
			r.mu.Unlock()
		},
		OnRegroup: func(rep discovery.RegroupReport) {
			r.mu.Lock()
			r.regroup = append(r.regroup, rep)
			r.notifyLocked()
			r.mu.Unlock()
		},
	}
}

func (r *reports) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// refreshAfter waits for the first full refresh (not a re-match) of group that started after t
// and satisfies ok (nil: any).
func (r *reports) refreshAfter(tb testing.TB, group discovery.GroupKey, t time.Time, ok func(discovery.RefreshReport) bool) discovery.RefreshReport {
	tb.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		r.mu.Lock()
		for _, rep := range r.refresh {
			if rep.Group == group && !rep.Rematch && rep.Started.After(t) && (ok == nil || ok(rep)) {
				r.mu.Unlock()
				return rep
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("no refresh of %s started after %s within 3 minutes", group, t.Format(time.RFC3339Nano))
		}
	}
}

// removed waits for a regroup that removed key.
func (r *reports) removed(tb testing.TB, key string) {
	tb.Helper()
	deadline := time.After(3 * time.Minute)
	for {
		r.mu.Lock()
		for _, rep := range r.regroup {
			for _, k := range rep.Removed {
				if k.String() == key {
					r.mu.Unlock()
					return
				}
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("%s was not removed within 3 minutes", key)
		}
	}
}

func (r *reports) all() []discovery.RefreshReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]discovery.RefreshReport(nil), r.refresh...)
}

// expected is discoverytest.ExpectedEndpoints over moto's view of the instances.
func expected(insts []awsemu.Instance, pairs map[string]string, keys []string, public bool, port int32, portTag string) map[string]discoverytest.Endpoint {
	in := make([]discoverytest.Instance, len(insts))
	for i, x := range insts {
		in[i] = discoverytest.Instance{ID: x.ID, State: x.State, PrivateIP: x.PrivateIP, PublicIP: x.PublicIP, Zone: x.AZ, Tags: x.Tags}
	}
	return discoverytest.ExpectedEndpoints(in, pairs, keys, public, port, portTag)
}

// published reads an Upstream's endpoints from its EndpointSlices, by hostname (the instance ID).
func published(tb testing.TB, c client.Reader, ns, upstream string) map[string]discoverytest.Endpoint {
	tb.Helper()
	var l discoveryv1.EndpointSliceList
	if err := c.List(context.Background(), &l, client.InNamespace(ns),
		client.MatchingLabels{discoveryv1.LabelServiceName: discovery.ServiceName(upstream)}); err != nil {
		tb.Fatalf("list endpointslices of %s/%s: %v", ns, upstream, err)
	}
	out := map[string]discoverytest.Endpoint{}
	for _, s := range l.Items {
		if len(s.Endpoints) > discovery.MaxEndpointsPerSlice {
			tb.Errorf("slice %s has %d endpoints, more than %d", s.Name, len(s.Endpoints), discovery.MaxEndpointsPerSlice)
		}
		for _, e := range s.Endpoints {
			zone := ""
			if e.Zone != nil {
				zone = *e.Zone
			}
			if e.Hostname == nil {
				tb.Fatalf("%s/%s: endpoint %s has no hostname (instance ID)", ns, upstream, e.Addresses[0])
			}
			if _, dup := out[*e.Hostname]; dup {
				tb.Errorf("%s/%s: instance %s published twice", ns, upstream, *e.Hostname)
			}
			out[*e.Hostname] = discoverytest.Endpoint{Address: e.Addresses[0], Port: *s.Ports[0].Port, Zone: zone}
		}
	}
	return out
}

func sameEndpoints(tb testing.TB, what string, got, want map[string]discoverytest.Endpoint) {
	tb.Helper()
	if len(want) == 0 {
		tb.Errorf("%s: the test expects no endpoints; the scenario is wrong", what)
	}
	if len(got) != len(want) {
		tb.Errorf("%s: %d endpoints published, want %d", what, len(got), len(want))
	}
	bad := 0
	for id, w := range want {
		if g, ok := got[id]; !ok || g != w {
			if bad++; bad <= 5 {
				tb.Errorf("%s: instance %s published as %+v (present %v), want %+v", what, id, g, ok, w)
			}
		}
	}
}
