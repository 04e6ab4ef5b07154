package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ec2guard/ec2guard/pkg/discovery/discoverytest"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func testMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func manyEndpoints(n int, port int32) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{InstanceID: fmt.Sprintf("i-%05d", i), Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250), Zone: "us-east-1a", Port: port}
	}
	return eps
}

func listSlices(t *testing.T, c client.Reader, ns string) []discoveryv1.EndpointSlice {
	t.Helper()
	var l discoveryv1.EndpointSliceList
	if err := c.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(l.Items, func(a, b discoveryv1.EndpointSlice) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return l.Items
}

func TestPublisherSyncWritesOnlyDifferences(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	w := discoverytest.NewRecordingWriter(c)
	p := NewPublisher(c, c, w, testMetrics(t), true, ServiceHeadless, logr.Discard())
	tg := target(t, ec2.Spec{Region: "us-east-1", Port: 8080}, "port")

	eps := append(manyEndpoints(230, 8080), Endpoint{InstanceID: "i-x", Address: "10.9.9.9", Port: 9090})
	n, err := p.Sync(ctx, tg, eps, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 { // service + 3 slices of port 8080 (100, 100, 30) + 1 of port 9090
		t.Fatalf("first sync wrote %d times, want 5", n)
	}
	got := listSlices(t, c, "ns")
	names := []string{}
	for _, s := range got {
		names = append(names, s.Name)
	}
	wantNames := []string{"ec2-up-8080-0", "ec2-up-8080-1", "ec2-up-8080-2", "ec2-up-9090-0"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("slices = %v, want %v", names, wantNames)
	}
	s0 := got[0]
	if len(s0.Endpoints) != 100 || len(got[2].Endpoints) != 30 || *s0.Ports[0].Port != 8080 || *got[3].Ports[0].Port != 9090 {
		t.Fatalf("slice sizes/ports wrong: %d, %d, %d, %d", len(s0.Endpoints), len(got[2].Endpoints), *s0.Ports[0].Port, *got[3].Ports[0].Port)
	}
	if s0.Labels[discoveryv1.LabelServiceName] != "ec2-up" || s0.Labels[discoveryv1.LabelManagedBy] != ManagedBy || s0.Labels[LabelUpstreamUID] != "uid-1" {
		t.Fatalf("slice labels = %v", s0.Labels)
	}
	if len(s0.OwnerReferences) != 1 || s0.OwnerReferences[0].Kind != "Upstream" || s0.OwnerReferences[0].UID != "uid-1" || !*s0.OwnerReferences[0].Controller {
		t.Fatalf("slice owner references = %+v", s0.OwnerReferences)
	}
	e0 := s0.Endpoints[0]
	if e0.Addresses[0] != "10.0.0.0" || *e0.Zone != "us-east-1a" || e0.Hints.ForZones[0].Name != "us-east-1a" || !*e0.Conditions.Ready {
		t.Fatalf("first endpoint = %+v", e0)
	}
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "ec2-up"}, &svc); err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Selector) != 0 || svc.Spec.Ports[0].Port != 8080 || svc.Spec.Ports[0].Name != ServicePortName || svc.Annotations[AnnotationUpstream] != "ns/up" {
		t.Fatalf("service = %+v", svc)
	}

	if n, err := p.Sync(ctx, tg, eps, time.Time{}); err != nil || n != 0 {
		t.Fatalf("unchanged sync wrote %d times (err %v), want 0", n, err)
	}

	eps[150].Address = "10.8.8.8" // in the second 8080 slice
	if n, err := p.Sync(ctx, tg, eps, time.Time{}); err != nil || n != 1 {
		t.Fatalf("one changed address: %d writes (err %v), want 1", n, err)
	}

	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	if n, err := p.Sync(ctx, tg, eps, since); err != nil || n != 1 {
		t.Fatalf("marking stale: %d writes (err %v), want 1", n, err)
	}
	_ = c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "ec2-up"}, &svc)
	if svc.Annotations[AnnotationStaleSince] != "2025-01-02T03:04:05Z" {
		t.Fatalf("stale-since = %q", svc.Annotations[AnnotationStaleSince])
	}
	if n, err := p.Sync(ctx, tg, eps, since); err != nil || n != 0 {
		t.Fatalf("still stale: %d writes, want 0", n)
	}

	if n, err := p.Sync(ctx, tg, eps[:50], time.Time{}); err != nil || n != 5 {
		t.Fatalf("shrinking to 50 endpoints: %d writes (err %v), want 5 (service, first slice, 3 deletes)", n, err)
	}
	if got := listSlices(t, c, "ns"); len(got) != 1 || len(got[0].Endpoints) != 50 {
		t.Fatalf("after shrinking: %d slices", len(got))
	}
	_ = c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "ec2-up"}, &svc)
	if _, stale := svc.Annotations[AnnotationStaleSince]; stale {
		t.Fatal("stale-since was not cleared")
	}

	if n, err := p.DeleteFor(ctx, "ns", "uid-1"); err != nil || n != 2 {
		t.Fatalf("DeleteFor: %d writes (err %v), want 2", n, err)
	}
	if got := listSlices(t, c, "ns"); len(got) != 0 {
		t.Fatalf("slices left after DeleteFor: %d", len(got))
	}
}

func TestPublisherRefusesForeignService(t *testing.T) {
	foreign := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "ec2-up"}}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(foreign).Build()
	p := NewPublisher(c, c, c, testMetrics(t), false, ServiceHeadless, logr.Discard())
	_, err := p.Sync(context.Background(), target(t, ec2.Spec{Region: "us-east-1"}, ""), manyEndpoints(1, 80), time.Time{})
	if !errors.Is(err, ErrNotOurs) {
		t.Fatalf("err = %v, want ErrNotOurs", err)
	}
}

func TestPublisherResolvesStaleCache(t *testing.T) {
	ctx := context.Background()
	api := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	tg := target(t, ec2.Spec{Region: "us-east-1"}, "")
	if _, err := NewPublisher(api, api, api, testMetrics(t), false, ServiceHeadless, logr.Discard()).Sync(ctx, tg, manyEndpoints(3, 80), time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A cache that has not seen the objects yet: creating them again meets AlreadyExists, which
	// a fresh read resolves without another write.
	staleCache := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	w := discoverytest.NewRecordingWriter(api)
	n, err := NewPublisher(staleCache, api, w, testMetrics(t), false, ServiceHeadless, logr.Discard()).Sync(ctx, tg, manyEndpoints(3, 80), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || w.Count() != 2 {
		t.Fatalf("%d writes reported, %d made; want 2 failed creates and no update", n, w.Count())
	}
}

func TestDeleteOrphans(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	p := NewPublisher(c, c, c, testMetrics(t), false, ServiceHeadless, logr.Discard())
	live := target(t, ec2.Spec{Region: "us-east-1"}, "")
	gone := target(t, ec2.Spec{Region: "us-east-1"}, "")
	gone.UID, gone.Upstream = "uid-gone", &ec2.Upstream{Namespace: "other", Name: "gone", Spec: gone.Upstream.Spec}
	for _, tg := range []*Target{live, gone} {
		if _, err := p.Sync(ctx, tg, manyEndpoints(2, 80), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := p.DeleteOrphans(ctx, map[types.UID]bool{live.UID: true})
	if err != nil || n != 2 {
		t.Fatalf("DeleteOrphans: %d writes (err %v), want 2", n, err)
	}
	if len(listSlices(t, c, "other")) != 0 || len(listSlices(t, c, "ns")) != 1 {
		t.Fatal("DeleteOrphans deleted the wrong slices")
	}
}
