package discovery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// failingWriter fails every create of one Service (like a full service IP range) while fail is
// set, and counts the attempts.
type failingWriter struct {
	client.Writer
	name     string
	mu       sync.Mutex
	fail     bool
	attempts int
}

func (w *failingWriter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	if _, ok := obj.(*corev1.Service); ok && obj.GetName() == w.name {
		w.mu.Lock()
		w.attempts++
		fail := w.fail
		w.mu.Unlock()
		if fail {
			return apierrors.NewInternalError(errors.New("failed to allocate a serviceIP: range is full"))
		}
	}
	return w.Writer.Create(ctx, obj, opts...)
}

func (w *failingWriter) state() (int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.attempts, w.fail
}

func (w *failingWriter) setFail(f bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = f
}

// TestPublishFailureIsolatedAndBackedOff: when one Upstream's Service cannot be created, the
// group's other Upstreams are published, the failing one says so (EC2G703) in its annotation and
// a metric, and it is retried with its own backoff — not on every refresh — and at once when it
// changes. Services are headless by default.
func TestPublishFailureIsolatedAndBackedOff(t *testing.T) {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	good := upstreamObj("default", "good", "uid-good", false, ec2Spec("us-east-1", "aws-a", kv("app", "web")), nil)
	bad := upstreamObj("default", "bad", "uid-bad", false, ec2Spec("us-east-1", "aws-a", kv("app", "api")), nil)
	group := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: "us-east-1"}
	east := fleet("e", 30)
	fw := &failingWriter{name: ServiceName("bad"), fail: true}
	h := startHarnessWrapped(t, map[string][]ec2api.Instance{"us-east-1": east}, []client.Object{awsSecret("aws-a"), good, bad},
		Options{Loop: LoopOptions{Clock: clk}}, nil, func(w client.Writer) client.Writer { fw.Writer = w; return fw })

	r := h.next(group, false)
	if r.Err != nil || r.PublishErr == nil {
		t.Fatalf("first refresh: listing %v, publishing %v (want a publishing error)", r.Err, r.PublishErr)
	}
	sameEndpoints(t, "good", published(t, h.c, "default", "good"), expectedEndpoints(east, map[string]string{"app": "web"}, nil, false, 80, ""))
	var svc corev1.Service
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: ServiceName("good")}, &svc); err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("good's Service: %v, clusterIP %q (want headless)", err, svc.Spec.ClusterIP)
	}
	st := statusOf(t, h.c, "default", "bad")
	if !strings.Contains(st.LastError, string(codes.PublishFailed)) || !strings.Contains(st.LastError, "range is full") {
		t.Fatalf("bad's status %+v, want %s with the error", st, codes.PublishFailed)
	}
	if v := metricValue(t, h.metrics.publishFails.WithLabelValues("default", "bad")); v != 1 {
		t.Fatalf("upstream_publish_failures{bad} = %v, want 1", v)
	}
	if st := statusOf(t, h.c, "default", "good"); st.LastError != "" {
		t.Fatalf("good's status %+v", st)
	}
	attempts, _ := fw.state()

	// The next refreshes (within the backoff) do not try the failing Service again.
	for range 2 {
		h.d.TriggerAll()
		if r := h.next(group, false); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if n, _ := fw.state(); n != attempts {
		t.Fatalf("the failing Service was tried %d more times within its backoff", n-attempts)
	}

	// After the backoff it is tried again (and fails again: two failures now).
	clk.Step(3 * time.Hour)
	for n, _ := fw.state(); n == attempts; n, _ = fw.state() {
		h.d.TriggerAll()
		h.next(group, false)
	}
	if v := metricValue(t, h.metrics.publishFails.WithLabelValues("default", "bad")); v != 2 {
		t.Fatalf("upstream_publish_failures{bad} = %v, want 2", v)
	}

	// The cause is fixed and the Upstream is edited: it is published at once.
	fw.setFail(false)
	obj := NewUpstreamObject()
	if err := h.c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "bad"}, obj); err != nil {
		t.Fatal(err)
	}
	if err := unstructuredSetFilters(obj, []any{kv("app", "api"), key("Name")}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	if r := h.next(group, true); r.PublishErr != nil {
		t.Fatalf("re-match after the edit: %v", r.PublishErr)
	}
	sameEndpoints(t, "bad after the fix", published(t, h.c, "default", "bad"), expectedEndpoints(east, map[string]string{"app": "api"}, []string{"Name"}, false, 80, ""))
	if st := statusOf(t, h.c, "default", "bad"); st.LastError != "" {
		t.Fatalf("bad's status after the fix: %+v", st)
	}
	if v := metricValue(t, h.metrics.publishFails); v != 0 {
		t.Fatalf("upstream_publish_failures = %v after the fix, want none", v)
	}
}

func TestPublishBackoff(t *testing.T) {
	for _, c := range []struct {
		interval, max time.Duration
		n             int
		want          time.Duration
	}{
		{30 * time.Second, 5 * time.Minute, 1, time.Minute},
		{30 * time.Second, 5 * time.Minute, 3, 4 * time.Minute},
		{30 * time.Second, 5 * time.Minute, 4, 5 * time.Minute},
		{3 * time.Hour, 3 * time.Hour, 1000, 3 * time.Hour},
	} {
		if got := backoff(c.interval, c.max, c.n); got != c.want {
			t.Errorf("backoff(%s, %s, %d) = %s, want %s", c.interval, c.max, c.n, got, c.want)
		}
	}
}
