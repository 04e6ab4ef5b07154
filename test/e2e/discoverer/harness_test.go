package discoverer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
)

// countingHTTP counts the DescribeInstances requests (not dry runs) that leave the discoverer.
type countingHTTP struct {
	next     aws.HTTPClient
	describe atomic.Int64
}

func (c *countingHTTP) Do(req *http.Request) (*http.Response, error) {
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

// countingWriter counts the Kubernetes API writes the discoverer makes.
type countingWriter struct {
	client.Writer
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) add(verb string, obj client.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, fmt.Sprintf("%s %T %s/%s", verb, obj, obj.GetNamespace(), obj.GetName()))
}

func (c *countingWriter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes)
}

func (c *countingWriter) since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes[n:]...)
}

func (c *countingWriter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.add("create", obj)
	return c.Writer.Create(ctx, obj, opts...)
}

func (c *countingWriter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.add("update", obj)
	return c.Writer.Update(ctx, obj, opts...)
}

func (c *countingWriter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.add("patch", obj)
	return c.Writer.Patch(ctx, obj, p, opts...)
}

func (c *countingWriter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.add("delete", obj)
	return c.Writer.Delete(ctx, obj, opts...)
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

// endpoint is one published or expected endpoint (keyed by instance ID).
type endpoint struct {
	address string
	port    int32
	zone    string
}

// expected is the test's own computation of an Upstream's endpoints from what moto reports:
// running instances whose tags hold every pair and key exactly; the private or public IPv4;
// the port from portTag when the instance has it (skipped when not a port 1-65535), else port.
func expected(insts []awsemu.Instance, pairs map[string]string, keys []string, public bool, port int32, portTag string) map[string]endpoint {
	out := map[string]endpoint{}
next:
	for _, in := range insts {
		if in.State != "running" {
			continue
		}
		for k, v := range pairs {
			if got, ok := in.Tags[k]; !ok || got != v {
				continue next
			}
		}
		for _, k := range keys {
			if _, ok := in.Tags[k]; !ok {
				continue next
			}
		}
		addr := in.PrivateIP
		if public {
			addr = in.PublicIP
		}
		if addr == "" {
			continue
		}
		p := port
		if v, ok := in.Tags[portTag]; ok && portTag != "" {
			var n int32
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || fmt.Sprint(n) != v || n < 1 || n > 65535 {
				continue
			}
			p = n
		}
		out[in.ID] = endpoint{address: addr, port: p, zone: in.AZ}
	}
	return out
}

// published reads an Upstream's endpoints from its EndpointSlices, by hostname (the instance ID).
func published(tb testing.TB, c client.Reader, ns, upstream string) map[string]endpoint {
	tb.Helper()
	var l discoveryv1.EndpointSliceList
	if err := c.List(context.Background(), &l, client.InNamespace(ns),
		client.MatchingLabels{discoveryv1.LabelServiceName: discovery.ServiceName(upstream)}); err != nil {
		tb.Fatalf("list endpointslices of %s/%s: %v", ns, upstream, err)
	}
	out := map[string]endpoint{}
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
			out[*e.Hostname] = endpoint{address: e.Addresses[0], port: *s.Ports[0].Port, zone: zone}
		}
	}
	return out
}

func sameEndpoints(tb testing.TB, what string, got, want map[string]endpoint) {
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
