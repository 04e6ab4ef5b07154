package admission

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

func TestMetricsRegisterAndCount(t *testing.T) {
	m, reg := testMetrics(t)
	m.CheckResult(codes.CheckSpec, "EC2G101", "deny")
	m.Request(WebhookMutate, KindEC2, ResultPatched)
	m.AWSCall("sts:GetCallerIdentity", AWSResultOK)
	m.CacheLookup(CacheHit)
	m.IAMDecision(DecisionAllowed, SourceLocal)
	for name, labels := range map[string]map[string]string{
		MetricCheckResults: {"check": "spec", "code": "EC2G101", "outcome": "deny"},
		MetricRequests:     {"webhook": "mutate", "kind": "ec2", "result": "patched"},
		MetricAWSCalls:     {"api": "sts:GetCallerIdentity", "result": "ok"},
		MetricIAMCache:     {"result": "hit"},
		MetricIAMDecisions: {"decision": "allowed", "source": "local"},
	} {
		if got := counterValue(t, reg, name, labels); got != 1 {
			t.Errorf("%s%v = %v, want 1", name, labels, got)
		}
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice with one registry succeeded")
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.CheckResult(codes.CheckSpec, "", OutcomePass)
	m.Request("", "", "")
	m.AWSCall("", "")
	m.CacheLookup("")
	m.IAMDecision("", "")
	if _, err := NewMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
}
