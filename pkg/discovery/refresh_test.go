package discovery

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func mustTarget(t *testing.T, name string, filters ...map[string]any) *Target {
	t.Helper()
	tg, err := NewTarget(upstreamObj("default", name, "uid-"+name, false, ec2Spec("us-east-1", "aws", filters...), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// TestMatchGroup: the match step turns a listing, the members and the audit into each member's
// endpoints and status, with no I/O.
func TestMatchGroup(t *testing.T) {
	web := mustTarget(t, "web", kv("app", "web"))
	all := mustTarget(t, "all", kv("env", "prod"))
	key := web.Group()
	ix := NewIndex([]ec2api.Instance{
		{ID: "i-2", PrivateIPv4: "10.0.0.2", AvailabilityZone: "us-east-1a", Tags: map[string]string{"app": "web", "env": "prod"}},
		{ID: "i-1", PrivateIPv4: "10.0.0.1", AvailabilityZone: "us-east-1b", Tags: map[string]string{"app": "web", "env": "prod"}},
		{ID: "i-3", AvailabilityZone: "us-east-1a", Tags: map[string]string{"app": "api", "env": "prod"}},
	})
	audit := (*Auditor)(nil).Audit(t.Context(), nil, key.Region, nil)
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	good := Result[*listing]{Value: &listing{index: ix}, HasValue: true, Started: started}

	got := matchGroup(key, good, []*Target{web, all}, audit)
	if len(got) != 2 || got[0].target != web || got[1].target != all {
		t.Fatalf("updates are not one per member in order: %+v", got)
	}
	w := got[0]
	if !w.listed || len(w.eps) != 2 || w.eps[0].InstanceID != "i-1" || w.eps[1].Address != "10.0.0.2" {
		t.Fatalf("web endpoints = %+v, want i-1 and i-2 sorted", w.eps)
	}
	if w.status.Count != 2 || w.status.Matched != 2 || w.status.Overlap != 2 || w.status.Group != key.String() ||
		w.status.Stale || w.status.LastError != "" || w.status.IAM == nil {
		t.Fatalf("web status = %+v", w.status)
	}
	a := got[1].status
	if a.Count != 2 || a.Matched != 3 || a.Skipped != 1 || a.SkippedInstances[0].Reason != discovered.SkipNoPrivateIPv4 || a.SkippedByReason[discovered.SkipNoPrivateIPv4] != 1 {
		t.Fatalf("all status = %+v", a)
	}

	// A failed attempt keeps the last good listing's endpoints and marks the status stale.
	failed := good
	failed.Err, failed.StaleSince = errors.New("boom"), started
	got = matchGroup(key, failed, []*Target{web}, audit)
	if st := got[0].status; !got[0].listed || len(got[0].eps) != 2 || !st.Stale || st.StaleSince != "2026-01-02T03:04:05Z" || st.LastError != "boom" {
		t.Fatalf("stale update = %+v", got[0])
	}

	// Before any good listing there is nothing to match.
	got = matchGroup(key, Result[*listing]{Err: errors.New("boom")}, []*Target{web}, audit)
	if got[0].listed || got[0].eps != nil || got[0].status.Count != 0 || !got[0].status.Stale {
		t.Fatalf("update without a listing = %+v", got[0])
	}
}

// TestPublishStopsWhenContextEnds: a group's publication writes nothing for its members once
// its context ended, and says so.
func TestPublishStopsWhenContextEnds(t *testing.T) {
	h := startHarness(t, nil, nil, Options{})
	web := mustTarget(t, "web", kv("app", "web"))
	key := web.Group()
	r := &groupRunner{d: h.d, key: key, failing: map[types.UID]*publishFailure{}}
	r.setMembers([]*Target{web, mustTarget(t, "api", kv("app", "api"))})
	ix := NewIndex([]ec2api.Instance{{ID: "i-1", PrivateIPv4: "10.0.0.1", Tags: map[string]string{"app": "web"}}})
	res := Result[*listing]{Value: &listing{index: ix}, HasValue: true}
	audit := (*Auditor)(nil).Audit(t.Context(), nil, key.Region, nil)

	before := h.w.Count()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rep := r.publish(ctx, res, audit, false)
	if rep.Writes != 0 || !errors.Is(rep.PublishErr, context.Canceled) {
		t.Fatalf("publication after the context ended: %d writes, error %v (want none, context.Canceled)", rep.Writes, rep.PublishErr)
	}
	if got := h.w.Since(before); len(got) != 0 {
		t.Fatalf("API writes after the context ended: %v", got)
	}
}
