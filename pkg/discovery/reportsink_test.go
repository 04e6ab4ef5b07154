package discovery

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// recordingSink is a ReportSink that keeps the last status per Upstream and "writes" only when
// it changed, like pkg/report's writer.
type recordingSink struct {
	mu      sync.Mutex
	last    map[types.NamespacedName]discovered.Status
	deleted []types.NamespacedName
	orphans []map[types.UID]bool
}

func (s *recordingSink) Write(_ context.Context, up *ec2.Upstream, _ types.UID, st discovered.Status) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := types.NamespacedName{Namespace: up.Namespace, Name: up.Name}
	if old, ok := s.last[key]; ok && discovered.SameContent(old, st) {
		return 0, nil
	}
	s.last[key] = st
	return 1, nil
}

func (s *recordingSink) Delete(_ context.Context, key types.NamespacedName) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, key)
	delete(s.last, key)
	return 1, nil
}

func (s *recordingSink) DeleteOrphans(_ context.Context, live map[types.UID]bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orphans = append(s.orphans, live)
	return 0, nil
}

func (s *recordingSink) status(key types.NamespacedName) (discovered.Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.last[key]
	return st, ok
}

func TestDiscovererFeedsReportSink(t *testing.T) {
	ctx := context.Background()
	web := upstreamObj("default", "web", "uid-web", false, ec2Spec("us-east-1", "aws-a", kv("app", "web")), nil)
	other := upstreamObj("default", "other", "uid-other", false, ec2Spec("us-east-1", "aws-a", kv("app", "web")), nil)
	bad := upstreamObj("default", "bad", "uid-bad", false, ec2Spec("nowhere", "aws-a", kv("app", "web")), nil)
	group := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: "us-east-1"}
	sink := &recordingSink{last: map[types.NamespacedName]discovered.Status{}}
	h := startHarnessWith(t, map[string][]ec2api.Instance{"us-east-1": fleet("e", 50)},
		[]client.Object{awsSecret("aws-a"), web, other, bad}, Options{}, sink)

	first := h.next(group, false)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	st, ok := sink.status(types.NamespacedName{Namespace: "default", Name: "web"})
	if !ok || st.IAM == nil || st.Consistency == "" || st.Matched == 0 || st.Overlap != st.Matched {
		t.Fatalf("the sink got %+v (ok %v), want web's audit with both Upstreams overlapping", st, ok)
	}
	if want := annotationStatus(t, h, "web"); !discovered.SameContent(st, want) {
		t.Errorf("the sink's status differs from the annotation:\n%+v\n%+v", st, want)
	}
	if st, ok := sink.status(types.NamespacedName{Namespace: "default", Name: "bad"}); !ok || !strings.Contains(st.LastError, "invalid upstream") {
		t.Errorf("the invalid upstream's report status = %+v (ok %v)", st, ok)
	}
	sink.mu.Lock()
	orphans := len(sink.orphans)
	sink.mu.Unlock()
	if orphans != 1 {
		t.Errorf("DeleteOrphans called %d times at start, want 1", orphans)
	}

	// An unchanged refresh: the sink's writes are counted, and there are none.
	h.d.TriggerAll()
	if r := h.next(group, false); r.Err != nil || r.Writes != 0 {
		t.Fatalf("unchanged refresh: %d writes, %v", r.Writes, r.Err)
	}

	// Deleting an Upstream deletes its report.
	if err := h.c.Delete(ctx, other); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	for {
		if rg := h.regrouped(); slices.Contains(rg.Removed, types.NamespacedName{Namespace: "default", Name: "other"}) {
			break
		}
	}
	sink.mu.Lock()
	deleted := slices.Clone(sink.deleted)
	sink.mu.Unlock()
	if !slices.Contains(deleted, types.NamespacedName{Namespace: "default", Name: "other"}) {
		t.Errorf("deleted reports %v, want default/other", deleted)
	}
}

func annotationStatus(t *testing.T, h *harness, name string) discovered.Status {
	t.Helper()
	return statusOf(t, h.c, "default", name)
}
