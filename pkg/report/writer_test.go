package report

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	openreports "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

func testMapper(withCRD bool) meta.RESTMapper {
	m := meta.NewDefaultRESTMapper([]schema.GroupVersion{openreports.SchemeGroupVersion})
	if withCRD {
		m.Add(GVK(), meta.RESTScopeNamespace)
	}
	return m
}

func newFakeClient(t *testing.T, objs ...client.Object) client.WithWatch {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := openreports.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
}

func stored(t *testing.T, c client.Client) []openreports.Report {
	t.Helper()
	l := &openreports.ReportList{}
	if err := c.List(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func webTarget() (*ec2.Upstream, discovered.Status) {
	in := webInput()
	return in.Upstream, in.Status
}

// recordedMetrics is a Metrics that keeps the last reports-available value.
type recordedMetrics struct {
	mu        sync.Mutex
	available float64
	writes    int
}

func (m *recordedMetrics) KubeWrite(string, string, error) { m.mu.Lock(); m.writes++; m.mu.Unlock() }

func (m *recordedMetrics) ReportsAvailable(ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.available = 0
	if ok {
		m.available = 1
	}
}

func TestWriterWritesOnlyOnChange(t *testing.T) {
	ctx := context.Background()
	c := newFakeClient(t)
	clk := clocktesting.NewFakePassiveClock(now)
	w := NewWriter(c, c, testMapper(true), nil, clk, logr.Discard())
	tg, st := webTarget()

	if n, err := w.Write(ctx, tg, webInput().UID, st); err != nil || n != 1 {
		t.Fatalf("first write: %d writes, %v", n, err)
	}
	got := stored(t, c)
	if len(got) != 1 || got[0].Name != "ec2guard-web" || got[0].Namespace != "gloo-system" || got[0].Summary.Warn != 3 || len(got[0].OwnerReferences) != 1 {
		t.Fatalf("stored %+v", got)
	}
	clk.SetTime(now.Add(30e9))
	if n, err := w.Write(ctx, tg, webInput().UID, st); err != nil || n != 0 {
		t.Fatalf("unchanged refresh: %d writes, %v", n, err)
	}
	// A new leader (empty memory) reads once and does not rewrite an unchanged report.
	w2 := NewWriter(c, c, testMapper(true), nil, clk, logr.Discard())
	if n, err := w2.Write(ctx, tg, webInput().UID, st); err != nil || n != 0 {
		t.Fatalf("unchanged after restart: %d writes, %v", n, err)
	}
	st.Matched, st.Count = 11, 10
	if n, err := w.Write(ctx, tg, webInput().UID, st); err != nil || n != 1 {
		t.Fatalf("changed: %d writes, %v", n, err)
	}
	if got := stored(t, c); got[0].Results[2].Properties[PropMatched] != "11" {
		t.Errorf("update not stored: %+v", got[0].Results[2])
	}
	if n, err := w.Delete(ctx, types.NamespacedName{Namespace: "gloo-system", Name: "web"}); err != nil || n != 1 {
		t.Fatalf("delete: %d writes, %v", n, err)
	}
	if got := stored(t, c); len(got) != 0 {
		t.Fatalf("left %d reports", len(got))
	}
	if n, err := w.Delete(ctx, types.NamespacedName{Namespace: "gloo-system", Name: "web"}); err != nil || n != 0 {
		t.Fatalf("second delete: %d writes, %v", n, err)
	}
}

func TestWriterWithoutCRD(t *testing.T) {
	c := newFakeClient(t)
	w := NewWriter(c, c, testMapper(false), nil, nil, logr.Discard())
	tg, st := webTarget()
	if n, err := w.Write(context.Background(), tg, "uid-web", st); err != nil || n != 0 || w.Enabled() {
		t.Fatalf("without the CRD: %d writes, %v, enabled %v", n, err, w.Enabled())
	}
}

func TestWriterDoesNotTakeOver(t *testing.T) {
	foreign := &openreports.Report{ObjectMeta: metav1.ObjectMeta{Name: "ec2guard-web", Namespace: "gloo-system"}, Source: "someone"}
	c := newFakeClient(t, foreign)
	w := NewWriter(c, c, testMapper(true), nil, nil, logr.Discard())
	tg, st := webTarget()
	n, err := w.Write(context.Background(), tg, "uid-web", st)
	if err == nil || n != 0 || !strings.Contains(err.Error(), "not managed by ec2guard") {
		t.Fatalf("foreign report: %d writes, %v", n, err)
	}
	if got := stored(t, c); got[0].Source != "someone" {
		t.Error("foreign report was changed")
	}
}

func TestWriterDeleteOrphans(t *testing.T) {
	ctx := context.Background()
	c := newFakeClient(t)
	w := NewWriter(c, c, testMapper(true), nil, nil, logr.Discard())
	tg, st := webTarget()
	if _, err := w.Write(ctx, tg, webInput().UID, st); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(ctx, upstream("other"), "uid-other", st); err != nil {
		t.Fatal(err)
	}
	n, err := w.DeleteOrphans(ctx, map[types.UID]bool{"uid-web": true})
	if err != nil || n != 1 {
		t.Fatalf("orphans: %d writes, %v", n, err)
	}
	if got := stored(t, c); len(got) != 1 || got[0].Name != "ec2guard-web" {
		t.Fatalf("left %+v", got)
	}
}

// switchMapper answers as testMapper(withCRD) for the current value of withCRD.
type switchMapper struct {
	meta.RESTMapper
	withCRD atomic.Bool
}

func (m *switchMapper) RESTMapping(gk schema.GroupKind, versions ...string) (*meta.RESTMapping, error) {
	return testMapper(m.withCRD.Load()).RESTMapping(gk, versions...)
}

// TestWriterWithoutCRDSaysSoOncePerInterval: without the CRD the writer writes nothing, logs one
// line per recheck interval (not per Upstream or refresh), sets reports_available to 0, and
// starts writing once the CRD is installed.
func TestWriterWithoutCRDSaysSoOncePerInterval(t *testing.T) {
	ctx := context.Background()
	c := newFakeClient(t)
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	m := &recordedMetrics{}
	var mu sync.Mutex
	var lines []string
	log := funcr.New(func(prefix, args string) { mu.Lock(); lines = append(lines, args); mu.Unlock() }, funcr.Options{})
	mapper := &switchMapper{}
	w := NewWriter(c, c, mapper, m, clk, log)
	w.SetRecheck(30 * time.Second)
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.Contains(l, "cannot write consistency reports") && strings.Contains(l, "not installed") {
				n++
			}
		}
		return n
	}
	available := func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.available
	}
	tg, st := webTarget()
	for range 5 { // five Upstreams (or refreshes) within one interval
		if n, err := w.Write(ctx, tg, webInput().UID, st); n != 0 || err != nil {
			t.Fatalf("without the CRD: %d writes, %v", n, err)
		}
	}
	if n := missing(); n != 1 || available() != 0 {
		t.Fatalf("within one interval: %d log lines (want 1), reports_available %v (want 0)", n, available())
	}
	clk.Step(30 * time.Second)
	for range 5 {
		_, _ = w.Write(ctx, tg, webInput().UID, st)
	}
	if n := missing(); n != 2 {
		t.Fatalf("after a second interval: %d log lines, want 2", n)
	}

	mapper.withCRD.Store(true)
	clk.Step(30 * time.Second)
	if n, err := w.Write(ctx, tg, webInput().UID, st); n != 1 || err != nil {
		t.Fatalf("after the CRD was installed: %d writes, %v", n, err)
	}
	if available() != 1 || len(stored(t, c)) != 1 {
		t.Fatalf("after the CRD was installed: reports_available %v, %d reports", available(), len(stored(t, c)))
	}
}
