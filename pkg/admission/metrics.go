package admission

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names. controller-runtime adds its own webhook metrics (controller_runtime_webhook_*:
// latency, requests in flight, totals by code) for every registered path.
const (
	MetricCheckResults = "ec2guard_admission_check_results_total"
	MetricRequests     = "ec2guard_admission_requests_total"
	MetricAWSCalls     = "ec2guard_aws_calls_total"
	MetricIAMCache     = "ec2guard_iam_cache_requests_total"
	MetricIAMDecisions = "ec2guard_iam_decisions_total"
	// MetricAccessReviewCache counts lookups of the SubjectAccessReview cache (hit, miss).
	MetricAccessReviewCache = "ec2guard_access_review_cache_total"
	// MetricAccessReviews counts the SubjectAccessReviews sent to the API server by answer.
	MetricAccessReviews = "ec2guard_access_reviews_total"
	// MetricTLSHandshakes counts the TLS handshakes the webhook server completed: one per new
	// connection from the API server.
	MetricTLSHandshakes = "ec2guard_webhook_tls_handshakes_total"
)

// Answers in MetricAccessReviews.
const (
	AccessReviewAllowed = "allowed"
	AccessReviewDenied  = "denied"
	AccessReviewError   = "error"
)

// Outcomes of a check in MetricCheckResults besides the enforcement actions.
const (
	// OutcomePass: the check ran and found nothing.
	OutcomePass = "pass"
)

// Cache results in MetricIAMCache.
const (
	CacheHit    = "hit"    // a fresh cached result
	CacheMiss   = "miss"   // this request started the fetch
	CacheShared = "shared" // joined a fetch another request started
)

// Metrics are ec2guard's Prometheus collectors. A nil *Metrics records nothing.
type Metrics struct {
	checks    *prometheus.CounterVec
	requests  *prometheus.CounterVec
	awsCalls  *prometheus.CounterVec
	cache     *prometheus.CounterVec
	decisions *prometheus.CounterVec
	access    *prometheus.CounterVec
	reviews   *prometheus.CounterVec
	tls       *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (controller-runtime's
// sigs.k8s.io/controller-runtime/pkg/metrics.Registry in the webhook binary; a fresh registry in
// tests). Registering twice with the same registry fails.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCheckResults,
			Help: "Results of the validating webhook's checks by check, code and outcome (pass, deny, warn, off).",
		}, []string{"check", "code", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "Admission requests by webhook (validate, mutate), kind (ec2, non-ec2, skipped) and result (allowed, denied, patched, error).",
		}, []string{"webhook", "kind", "result"}),
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAWSCalls,
			Help: "HTTP calls to AWS by API (service:Operation) and result (ok, client-error, server-error, network-error, canceled). Retries count as calls.",
		}, []string{"api", "result"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricIAMCache,
			Help: "Lookups of the IAM result cache by result (hit, miss, shared).",
		}, []string{"result"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricIAMDecisions,
			Help: "IAM results computed (cache misses only) by decision and deciding source.",
		}, []string{"decision", "source"}),
		access: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAccessReviewCache,
			Help: "Lookups of the SubjectAccessReview answer cache by result (hit, miss).",
		}, []string{"result"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAccessReviews,
			Help: "SubjectAccessReviews sent to the API server by answer (allowed, denied, error).",
		}, []string{"result"}),
		tls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricTLSHandshakes,
			Help: "TLS handshakes completed by the webhook server (one per new connection) by whether the session was resumed and the negotiated protocol (http/1.1, h2).",
		}, []string{"resumed", "protocol"}),
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.checks, m.requests, m.awsCalls, m.cache, m.decisions, m.access, m.reviews, m.tls} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering ec2guard metrics: %w", err)
	}
	return m, nil
}

// CheckResult counts one result of check c.
func (m *Metrics) CheckResult(c Check, code, outcome string) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(string(c), code, outcome).Inc()
}

// Request counts one admission request.
func (m *Metrics) Request(webhook, kind, result string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(webhook, kind, result).Inc()
}

// AWSCall counts one HTTP call to AWS.
func (m *Metrics) AWSCall(api, result string) {
	if m == nil {
		return
	}
	m.awsCalls.WithLabelValues(api, result).Inc()
}

// CacheLookup counts one lookup of the IAM result cache.
func (m *Metrics) CacheLookup(result string) {
	if m == nil {
		return
	}
	m.cache.WithLabelValues(result).Inc()
}

// IAMDecision counts one computed IAM result.
func (m *Metrics) IAMDecision(decision, source string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(decision, source).Inc()
}

// AccessCacheLookup counts one lookup of the SubjectAccessReview cache.
func (m *Metrics) AccessCacheLookup(result string) {
	if m == nil {
		return
	}
	m.access.WithLabelValues(result).Inc()
}

// AccessReview counts one SubjectAccessReview sent to the API server.
func (m *Metrics) AccessReview(result string) {
	if m == nil {
		return
	}
	m.reviews.WithLabelValues(result).Inc()
}

// TLSHandshake counts one completed TLS handshake of the webhook server.
func (m *Metrics) TLSHandshake(resumed bool, protocol string) {
	if m == nil {
		return
	}
	if protocol == "" {
		protocol = "http/1.1" // no ALPN: the server speaks HTTP/1.1
	}
	m.tls.WithLabelValues(strconv.FormatBool(resumed), protocol).Inc()
}
