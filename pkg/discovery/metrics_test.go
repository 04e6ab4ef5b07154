package discovery

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

func TestMetricsForgetRemovesSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering the metrics twice in one registry succeeded")
	}
	st := &discovered.Status{Count: 3, Matched: 4, IAM: &discovered.IAMStatus{Decision: verdict.DecisionAllowed, Source: verdict.SourceListing},
		Consistency: "permissive-credentials-no-filters", SkippedByReason: map[string]int{discovered.SkipBadPortTag: 1}}
	m.upstream("ns", "a", st)
	m.upstream("ns", "b", st)
	if v := metricValue(t, m.endpoints); v != 6 {
		t.Fatalf("endpoints = %v, want 6", v)
	}
	st.IAM = &discovered.IAMStatus{Decision: verdict.DecisionImplicitDeny, Source: verdict.SourceListing}
	m.upstream("ns", "a", st) // the old IAM series of ns/a must go
	if v := metricValue(t, m.iam); v != 2 {
		t.Fatalf("iam info series sum = %v, want 2 (one per upstream)", v)
	}
	m.forgetUpstream("ns", "a")
	if v := metricValue(t, m.endpoints); v != 3 {
		t.Fatalf("endpoints after forgetting ns/a = %v, want 3", v)
	}
	if v := metricValue(t, m.skipped); v != 1 {
		t.Fatalf("skipped after forgetting ns/a = %v, want 1", v)
	}
	m.listing("g", 2, 1500)
	m.forgetGroup("g")
	if v := metricValue(t, m.pages); v != 0 {
		t.Fatalf("pages after forgetting the group = %v", v)
	}
}

// TestMetricsUpstreamReplacesSeries: a new status replaces every per-Upstream series of the
// previous one (skip reasons that went, the refusal, the publication failures), and leaves the
// other Upstreams' series alone.
func TestMetricsUpstreamReplacesSeries(t *testing.T) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	m.refusedUpstream("ns", "a", &discovered.Refusal{Code: "EC2G701"})
	m.upstream("ns", "b", &discovered.Status{Count: 1, SkippedByReason: map[string]int{discovered.SkipNoPrivateIPv4: 2}})
	m.upstream("ns", "a", &discovered.Status{Count: 2, SkippedByReason: map[string]int{discovered.SkipBadPortTag: 1, discovered.SkipNoPrivateIPv4: 1}})
	m.publishFailing("ns", "a", 3)
	if v := metricValue(t, m.refused); v != 0 {
		t.Fatalf("refused after a status = %v, want 0", v)
	}
	if v := metricValue(t, m.skipped); v != 4 {
		t.Fatalf("skipped = %v, want 4", v)
	}
	m.upstream("ns", "a", &discovered.Status{Count: 2, SkippedByReason: map[string]int{discovered.SkipNoPrivateIPv4: 1}})
	if v := metricValue(t, m.skipped); v != 3 {
		t.Fatalf("skipped after the bad-port-tag skip went = %v, want 3", v)
	}
	if v := metricValue(t, m.publishFails); v != 0 {
		t.Fatalf("publish failures after a status without = %v, want 0", v)
	}
	m.refusedUpstream("ns", "a", &discovered.Refusal{Code: "EC2G702"})
	if v := metricValue(t, m.endpoints); v != 1 {
		t.Fatalf("endpoints after refusing ns/a = %v, want 1 (ns/b's)", v)
	}
	m.notRefused("ns", "a")
	if v := metricValue(t, m.refused); v != 0 {
		t.Fatalf("refused after notRefused = %v, want 0", v)
	}
}

// BenchmarkMetricsUpstream sets the per-Upstream gauges of one Upstream among 5,000 (the full
// fleet of test/scale), as every group refresh does for each of its Upstreams: the cost must not
// grow with the number of Upstreams.
func BenchmarkMetricsUpstream(b *testing.B) {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	const n = 5000
	names := make([]string, n)
	st := &discovered.Status{Count: 98, Matched: 98}
	for i := range names {
		names[i] = fmt.Sprintf("svc-%d", i)
		m.upstream("ns", names[i], st)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		m.upstream("ns", names[i%n], st)
	}
}
