// Package certrotation keeps the webhook's serving certificate from surprising anyone: it exposes
// the certificate's expiry as a metric and warns in the log when it is close (every TLS mode), and
// (self-managed mode) provisions and rotates the CA and serving certificate itself.
package certrotation

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// MetricCertificateExpiry is the Unix time at which the served certificate expires.
const MetricCertificateExpiry = "ec2guard_webhook_certificate_expiry_timestamp_seconds"

// Defaults of ExpiryWatcher.
const (
	DefaultWarnBefore    = 30 * 24 * time.Hour
	DefaultCheckInterval = time.Hour
	// maxCertFileSize bounds what is read from the certificate file.
	maxCertFileSize = 1 << 20
)

// ExpiryMetric is the gauge of MetricCertificateExpiry.
type ExpiryMetric struct{ gauge prometheus.Gauge }

// NewExpiryMetric creates the gauge and registers it with reg.
func NewExpiryMetric(reg prometheus.Registerer) (*ExpiryMetric, error) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: MetricCertificateExpiry,
		Help: "Unix time (seconds) at which the webhook's serving certificate (the leaf in --cert-dir) expires.",
	})
	if err := reg.Register(g); err != nil {
		return nil, fmt.Errorf("register %s: %w", MetricCertificateExpiry, err)
	}
	return &ExpiryMetric{gauge: g}, nil
}

// ExpiryWatcher reads the serving certificate file every Interval, sets the metric and logs a
// warning while the certificate expires within WarnBefore (or has expired).
type ExpiryWatcher struct {
	CertFile   string
	WarnBefore time.Duration
	Interval   time.Duration
	Metric     *ExpiryMetric
	Log        logr.Logger
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// NotAfter reads the expiry of the first certificate in a PEM file.
func NotAfter(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("serving certificate %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, maxCertFileSize+1))
	if err != nil {
		return time.Time{}, fmt.Errorf("serving certificate %s: %w", path, err)
	}
	if len(data) > maxCertFileSize {
		return time.Time{}, fmt.Errorf("serving certificate %s: larger than %d bytes", path, maxCertFileSize)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return time.Time{}, fmt.Errorf("serving certificate %s: no PEM CERTIFICATE block", path)
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return time.Time{}, fmt.Errorf("serving certificate %s: %w", path, err)
		}
		return cert.NotAfter, nil
	}
}

// Check reads the certificate once, sets the metric and logs; it returns the expiry.
func (w *ExpiryWatcher) Check() (time.Time, error) {
	notAfter, err := NotAfter(w.CertFile)
	if err != nil {
		w.Log.Error(err, "cannot read the serving certificate's expiry")
		return time.Time{}, err
	}
	if w.Metric != nil {
		w.Metric.gauge.Set(float64(notAfter.Unix()))
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	warn := w.WarnBefore
	if warn <= 0 {
		warn = DefaultWarnBefore
	}
	switch left := notAfter.Sub(now()); {
	case left <= 0:
		w.Log.Error(errors.New("the webhook's serving certificate has expired"), "renew it: the API server cannot call the webhook",
			"notAfter", notAfter.UTC().Format(time.RFC3339), "file", w.CertFile)
	case left < warn:
		w.Log.Info("WARNING: the webhook's serving certificate expires soon; renew it (docs/install.md, TLS)",
			"notAfter", notAfter.UTC().Format(time.RFC3339), "daysLeft", int(left.Hours()/24), "file", w.CertFile)
	}
	return notAfter, nil
}

// Start checks at once and then every Interval until ctx ends (a controller-runtime Runnable).
func (w *ExpiryWatcher) Start(ctx context.Context) error {
	interval := w.Interval
	if interval <= 0 {
		interval = DefaultCheckInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, _ = w.Check()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// NeedLeaderElection: every replica watches the certificate it serves.
func (w *ExpiryWatcher) NeedLeaderElection() bool { return false }
