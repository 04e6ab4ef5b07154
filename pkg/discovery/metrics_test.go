package discovery

import (
	"testing"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/verdict"
	"github.com/prometheus/client_golang/prometheus"
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
