// Package discoverytest holds test helpers for the discoverer, shared by its unit tests and its
// end-to-end tests: a Kubernetes writer that records the writes reaching the API, and the tests'
// own computation of the endpoints an Upstream should publish, independent of pkg/discovery.
package discoverytest

import (
	"context"
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RecordingWriter wraps a client.Writer and records every write that reaches it as
// "verb *Type namespace/name".
type RecordingWriter struct {
	client.Writer
	mu     sync.Mutex
	writes []string
}

// NewRecordingWriter wraps w.
func NewRecordingWriter(w client.Writer) *RecordingWriter { return &RecordingWriter{Writer: w} }

func (c *RecordingWriter) add(verb string, obj client.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, fmt.Sprintf("%s %T %s/%s", verb, obj, obj.GetNamespace(), obj.GetName()))
}

// Count returns how many writes were made so far.
func (c *RecordingWriter) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes)
}

// Since returns the writes after the first n.
func (c *RecordingWriter) Since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes[n:]...)
}

// Create implements client.Writer.
func (c *RecordingWriter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.add("create", obj)
	return c.Writer.Create(ctx, obj, opts...)
}

// Update implements client.Writer.
func (c *RecordingWriter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.add("update", obj)
	return c.Writer.Update(ctx, obj, opts...)
}

// Patch implements client.Writer.
func (c *RecordingWriter) Patch(ctx context.Context, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.add("patch", obj)
	return c.Writer.Patch(ctx, obj, p, opts...)
}

// Delete implements client.Writer.
func (c *RecordingWriter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.add("delete", obj)
	return c.Writer.Delete(ctx, obj, opts...)
}

// Instance is what ExpectedEndpoints reads of an EC2 instance.
type Instance struct {
	ID, State, PrivateIP, PublicIP, Zone string
	Tags                                 map[string]string
}

// Endpoint is one published or expected endpoint.
type Endpoint struct {
	Address string
	Port    int32
	Zone    string
}

// ExpectedEndpoints is the tests' own computation of what an Upstream publishes, by instance ID:
// running instances whose tags hold every pair and every key exactly (case-sensitive); the
// private or (public) the public IPv4, instances without one skipped; the port from portTag when
// the instance has that tag (skipped when it is not a port 1-65535), else port.
func ExpectedEndpoints(insts []Instance, pairs map[string]string, keys []string, public bool, port int32, portTag string) map[string]Endpoint {
	out := map[string]Endpoint{}
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
		out[in.ID] = Endpoint{Address: addr, Port: p, Zone: in.Zone}
	}
	return out
}
