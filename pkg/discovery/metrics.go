package discovery

import (
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
)

const metricsNamespace = "ec2guard_discoverer"

// Metrics are the discoverer's Prometheus metrics. Label values never hold secret values: groups
// are named by secret namespace/name, region and roleArn.
type Metrics struct {
	refreshDuration *prometheus.HistogramVec
	refreshes       *prometheus.CounterVec
	awsCalls        *prometheus.CounterVec
	throttles       *prometheus.CounterVec
	pages           *prometheus.GaugeVec
	instances       *prometheus.GaugeVec
	groups          prometheus.Gauge
	staleGroups     prometheus.Gauge
	kubeWrites      *prometheus.CounterVec
	endpoints       *prometheus.GaugeVec
	matched         *prometheus.GaugeVec
	skipped         *prometheus.GaugeVec
	overlap         *prometheus.GaugeVec
	caseOnly        *prometheus.GaugeVec
	iam             *prometheus.GaugeVec
	generated       *prometheus.GaugeVec
	refused         *prometheus.GaugeVec
	generatedCapped *prometheus.GaugeVec
	generatedSkip   *prometheus.GaugeVec
	publishFails    *prometheus.GaugeVec
	reportsAvail    prometheus.Gauge

	// series remembers, per Upstream, the label sets of its per-Upstream series, so that they
	// are replaced and deleted by exact labels: DeletePartialMatch walks every series of a vector
	// (5,000 Upstreams: 75% of the discoverer's CPU in a steady-state profile).
	mu     sync.Mutex
	series map[upstreamName]*upstreamSeries
}

type upstreamName struct{ namespace, name string }

// upstreamSeries are the label values of an Upstream's series besides namespace and name.
type upstreamSeries struct {
	counts       bool     // endpoints, matched, overlap, caseOnly
	skipped      []string // reasons
	iam          []string // decision, source, consistency; nil: none
	refused      string   // code; "": none
	publishFails bool
}

// NewMetrics creates the metrics and registers them with reg (controller-runtime's
// metrics.Registry in the binary, a fresh registry in tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	up := []string{"namespace", "upstream"}
	m := &Metrics{
		refreshDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "refresh_duration_seconds",
			Help:    "Duration of one credential group's refresh: listing, matching, publishing, audit.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"group", "result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "refreshes_total",
			Help: "Refresh attempts per credential group by result (success, error).",
		}, []string{"group", "result"}),
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "aws_calls_total",
			Help: "AWS API call attempts made by the discoverer, by API and result (OK, or the AWS error code).",
		}, []string{"api", "result"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "aws_throttles_total",
			Help: "AWS API call attempts answered with a throttling error, by API.",
		}, []string{"api"}),
		pages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "group_pages",
			Help: "DescribeInstances pages of the credential group's last successful listing.",
		}, []string{"group"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "group_instances",
			Help: "Running instances in the credential group's last successful listing.",
		}, []string{"group"}),
		groups: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "groups", Help: "Credential groups being refreshed.",
		}),
		staleGroups: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "stale_groups",
			Help: "Credential groups whose last refresh failed (their Upstreams keep the last good endpoints).",
		}),
		kubeWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "kube_writes_total",
			Help: "Kubernetes API writes by resource, verb and result.",
		}, []string{"resource", "verb", "result"}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_endpoints", Help: "Endpoints published per Upstream.",
		}, up),
		matched: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_matched_instances",
			Help: "Running instances the Upstream's filters select (before skipping).",
		}, up),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_skipped_instances",
			Help: "Selected instances not published, by reason (no-private-ipv4, no-public-ipv4, bad-port-tag).",
		}, append(up, "reason")),
		overlap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_overlapping_instances",
			Help: "Selected instances that another Upstream of the same credential group selects too.",
		}, up),
		caseOnly: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_case_insensitive_only_instances",
			Help: "Instances only Gloo's lowercased-key comparison would select (ec2guard, like AWS, does not).",
		}, up),
		iam: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_iam_info",
			Help: "1 for the Upstream's current IAM decision, its source and consistency class.",
		}, append(up, "decision", "source", "consistency")),
		generated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "generated_upstreams",
			Help: "Upstreams generated by discover-from-tags, per credential group.",
		}, []string{"group"}),
		refused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_refused",
			Help: "1 for an EC2 Upstream the discoverer does not discover because it may not use the credentials it names, by code (" + string(codes.DiscoverySecretNotShared) + " secret not shared with its namespace, " + string(codes.DiscoveryPodIdentityNotAllowed) + " pod identity not allowed).",
		}, append(up, "code")),
		generatedCapped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "generated_upstreams_capped",
			Help: "Upstreams discover-from-tags did not generate in its last sync because --discover-max-upstreams was reached (" + string(codes.GeneratedCapReached) + "), per credential group.",
		}, []string{"group"}),
		generatedSkip: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "generated_upstreams_skipped",
			Help: "Instance tags discover-from-tags ignored in its last sync (invalid names, namespaces not allowed: " + string(codes.GeneratedNamespaceRefused) + "), per credential group.",
		}, []string{"group"}),
		publishFails: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "upstream_publish_failures",
			Help: "Consecutive failed publications (Service or EndpointSlice writes) of an Upstream, retried with backoff (" + string(codes.PublishFailed) + "); absent when publishing works.",
		}, up),
		reportsAvail: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "reports_available",
			Help: "1 when consistency reports can be written (the OpenReports CRD is installed), 0 when not; absent with --reports=false.",
		}),
		series: map[upstreamName]*upstreamSeries{},
	}
	for _, c := range []prometheus.Collector{m.refreshDuration, m.refreshes, m.awsCalls, m.throttles, m.pages, m.instances,
		m.groups, m.staleGroups, m.kubeWrites, m.endpoints, m.matched, m.skipped, m.overlap, m.caseOnly, m.iam, m.generated, m.refused, m.generatedCapped, m.generatedSkip, m.publishFails, m.reportsAvail} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register discoverer metrics: %w", err)
		}
	}
	return m, nil
}

// AWSCall counts one AWS call attempt.
func (m *Metrics) AWSCall(api, code string, throttled bool) {
	m.awsCalls.WithLabelValues(api, code).Inc()
	if throttled {
		m.throttles.WithLabelValues(api).Inc()
	}
}

// KubeWrite counts one Kubernetes API write.
func (m *Metrics) KubeWrite(resource, verb string, err error) {
	result := "ok"
	switch {
	case err == nil:
	case apierrors.IsConflict(err):
		result = "conflict"
	case apierrors.IsAlreadyExists(err):
		result = "already-exists"
	case apierrors.IsNotFound(err):
		result = "not-found"
	default:
		result = "error"
	}
	m.kubeWrites.WithLabelValues(resource, verb, result).Inc()
}

func (m *Metrics) refreshed(group string, ok bool, seconds float64) {
	result := "success"
	if !ok {
		result = "error"
	}
	m.refreshes.WithLabelValues(group, result).Inc()
	m.refreshDuration.WithLabelValues(group, result).Observe(seconds)
}

func (m *Metrics) listing(group string, pages, instances int) {
	m.pages.WithLabelValues(group).Set(float64(pages))
	m.instances.WithLabelValues(group).Set(float64(instances))
}

func (m *Metrics) setGroups(total, stale int) {
	m.groups.Set(float64(total))
	m.staleGroups.Set(float64(stale))
}

func (m *Metrics) forgetGroup(group string) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.refreshDuration, m.refreshes, m.pages, m.instances, m.generated, m.generatedCapped, m.generatedSkip} {
		v.DeletePartialMatch(prometheus.Labels{"group": group})
	}
}

// upstream sets the per-Upstream gauges from its status (and drops its refusal and publication
// failure series).
func (m *Metrics) upstream(ns, name string, s *discovered.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := upstreamName{ns, name}
	sr := m.seriesOf(k)
	m.endpoints.WithLabelValues(ns, name).Set(float64(s.Count))
	m.matched.WithLabelValues(ns, name).Set(float64(s.Matched))
	m.overlap.WithLabelValues(ns, name).Set(float64(s.Overlap))
	m.caseOnly.WithLabelValues(ns, name).Set(float64(s.CaseInsensitiveOnly))
	sr.counts = true
	for _, reason := range sr.skipped {
		if _, ok := s.SkippedByReason[reason]; !ok {
			m.skipped.DeleteLabelValues(ns, name, reason)
		}
	}
	sr.skipped = sr.skipped[:0]
	for reason, n := range s.SkippedByReason {
		m.skipped.WithLabelValues(ns, name, reason).Set(float64(n))
		sr.skipped = append(sr.skipped, reason)
	}
	var iam []string
	if s.IAM != nil {
		iam = []string{s.IAM.Decision, s.IAM.Source, s.Consistency}
	}
	if sr.iam != nil && !slices.Equal(sr.iam, iam) {
		m.iam.DeleteLabelValues(ns, name, sr.iam[0], sr.iam[1], sr.iam[2])
	}
	if iam != nil {
		m.iam.WithLabelValues(ns, name, iam[0], iam[1], iam[2]).Set(1)
	}
	sr.iam = iam
	m.deleteRefused(ns, name, sr)
	if sr.publishFails {
		m.publishFails.DeleteLabelValues(ns, name)
		sr.publishFails = false
	}
}

// seriesOf returns the series record of k, made on first use (under mu).
func (m *Metrics) seriesOf(k upstreamName) *upstreamSeries {
	sr := m.series[k]
	if sr == nil {
		sr = &upstreamSeries{}
		m.series[k] = sr
	}
	return sr
}

// forgetUpstream deletes every series of an Upstream.
func (m *Metrics) forgetUpstream(ns, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(ns, name)
}

func (m *Metrics) forgetLocked(ns, name string) {
	k := upstreamName{ns, name}
	sr := m.series[k]
	if sr == nil {
		return
	}
	delete(m.series, k)
	if sr.counts {
		for _, v := range []*prometheus.GaugeVec{m.endpoints, m.matched, m.overlap, m.caseOnly} {
			v.DeleteLabelValues(ns, name)
		}
	}
	for _, reason := range sr.skipped {
		m.skipped.DeleteLabelValues(ns, name, reason)
	}
	if sr.iam != nil {
		m.iam.DeleteLabelValues(ns, name, sr.iam[0], sr.iam[1], sr.iam[2])
	}
	m.deleteRefused(ns, name, sr)
	if sr.publishFails {
		m.publishFails.DeleteLabelValues(ns, name)
	}
}

func (m *Metrics) deleteRefused(ns, name string, sr *upstreamSeries) {
	if sr.refused != "" {
		m.refused.DeleteLabelValues(ns, name, sr.refused)
		sr.refused = ""
	}
}

// notRefused drops the refusal series of an Upstream that is no longer refused.
func (m *Metrics) notRefused(ns, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sr := m.series[upstreamName{ns, name}]; sr != nil {
		m.deleteRefused(ns, name, sr)
	}
}

func (m *Metrics) generatedUpstreams(group string, n int) {
	m.generated.WithLabelValues(group).Set(float64(n))
}

// refusedUpstream marks an Upstream as refused (its other gauges are dropped).
func (m *Metrics) refusedUpstream(ns, name string, r *discovered.Refusal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(ns, name)
	m.refused.WithLabelValues(ns, name, r.Code).Set(1)
	m.seriesOf(upstreamName{ns, name}).refused = r.Code
}

func (m *Metrics) generatedLimits(group string, capped, skipped int) {
	m.generatedCapped.WithLabelValues(group).Set(float64(capped))
	m.generatedSkip.WithLabelValues(group).Set(float64(skipped))
}

func (m *Metrics) publishFailing(ns, name string, failures int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.publishFails.WithLabelValues(ns, name).Set(float64(failures))
	m.seriesOf(upstreamName{ns, name}).publishFails = true
}

// ReportsAvailable records whether consistency reports can be written (pkg/report's writer).
func (m *Metrics) ReportsAvailable(ok bool) {
	v := 0.0
	if ok {
		v = 1
	}
	m.reportsAvail.Set(v)
}
