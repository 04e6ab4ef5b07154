// Package opsdoc generates docs/operations.md: every flag of the webhook and the discoverer (from
// their own -h output, i.e. their flag sets) and every ec2guard metric (from the collectors the
// binaries register), in one table each.
package opsdoc

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/certrotation"
	"github.com/ec2guard/ec2guard/pkg/discovery"
)

// Metric is one metric a binary registers.
type Metric struct {
	Name   string
	Type   string
	Help   string
	Labels []string
	Binary string
}

// recorder is a prometheus.Registerer that keeps the descriptions of what is registered.
type recorder struct {
	binary string
	descs  []*prometheus.Desc
	kinds  map[*prometheus.Desc]string
}

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	kind := collectorType(c)
	for d := range ch {
		r.descs = append(r.descs, d)
		r.kinds[d] = kind
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

func collectorType(c prometheus.Collector) string {
	// Gauge before Counter: a Gauge also has Inc and Add.
	switch c.(type) {
	case *prometheus.GaugeVec, prometheus.Gauge:
		return "gauge"
	case *prometheus.CounterVec, prometheus.Counter:
		return "counter"
	case *prometheus.HistogramVec, prometheus.Histogram:
		return "histogram"
	case *prometheus.SummaryVec, prometheus.Summary:
		return "summary"
	}
	return "untyped"
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]*)"`)
	descHelp   = regexp.MustCompile(`help: "((?:[^"\\]|\\.)*)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

// Metrics returns every ec2guard metric of both binaries, by the collectors they register: the
// webhook's (pkg/admission, the certificate expiry) and the discoverer's (pkg/discovery).
func Metrics() ([]Metric, error) {
	var out []Metric
	for _, b := range []struct {
		binary   string
		register func(prometheus.Registerer) error
	}{
		{"webhook", func(r prometheus.Registerer) error { _, err := admission.NewMetrics(r); return err }},
		{"webhook", func(r prometheus.Registerer) error { _, err := certrotation.NewExpiryMetric(r); return err }},
		{"discoverer", func(r prometheus.Registerer) error { _, err := discovery.NewMetrics(r); return err }},
	} {
		rec := &recorder{binary: b.binary, kinds: map[*prometheus.Desc]string{}}
		if err := b.register(rec); err != nil {
			return nil, fmt.Errorf("metrics of the %s: %w", b.binary, err)
		}
		for _, d := range rec.descs {
			s := d.String()
			name := descName.FindStringSubmatch(s)
			if name == nil {
				return nil, fmt.Errorf("cannot read the name of %s", s)
			}
			m := Metric{Name: name[1], Type: rec.kinds[d], Binary: b.binary}
			if h := descHelp.FindStringSubmatch(s); h != nil {
				m.Help = strings.ReplaceAll(h[1], `\"`, `"`)
			}
			if l := descLabels.FindStringSubmatch(s); l != nil && strings.TrimSpace(l[1]) != "" {
				for _, lab := range strings.Split(l[1], ",") {
					m.Labels = append(m.Labels, strings.Trim(strings.TrimSpace(lab), `"{}`))
				}
			}
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Metric) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
