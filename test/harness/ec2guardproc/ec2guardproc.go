// Package ec2guardproc runs ec2guard's own binaries against a k8senv control plane the way the
// chart runs them: the webhook serving envtest's webhook port with the two webhook configurations
// registered (validating and mutating, CREATE and UPDATE of Upstreams, failurePolicy Fail), and the
// discoverer. Both talk to AWS only through the endpoint given (an emulator or a proxy to one).
package ec2guardproc

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// TimeoutSeconds of both webhook configurations (the chart's default).
const TimeoutSeconds = 10

// readyTimeout bounds the wait for a started binary to be ready.
const readyTimeout = time.Minute

// WebhookConfigurations are the validating and mutating configurations the chart creates, with the
// clientConfig naming the chart's Service (envtest rewrites it to its local webhook server). Pass
// them to k8senv.Start.
func WebhookConfigurations() ([]*admissionregistrationv1.ValidatingWebhookConfiguration, []*admissionregistrationv1.MutatingWebhookConfiguration) {
	rules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{"gloo.solo.io"}, APIVersions: []string{"v1"},
			Resources: []string{"upstreams"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
	}}
	cc := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{
			Service: &admissionregistrationv1.ServiceReference{Namespace: "ec2guard-system", Name: "ec2guard-webhook", Path: ptr.To(path)},
		}
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "ec2guard"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate-upstream.ec2guard.io", ClientConfig: cc(admission.ValidatePath), Rules: rules,
			FailurePolicy: ptr.To(admissionregistrationv1.Fail), SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: ptr.To[int32](TimeoutSeconds),
		}},
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "ec2guard"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "mutate-upstream.ec2guard.io", ClientConfig: cc(admission.MutatePath), Rules: rules,
			FailurePolicy: ptr.To(admissionregistrationv1.Fail), SideEffects: ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"}, TimeoutSeconds: ptr.To[int32](TimeoutSeconds),
			ReinvocationPolicy: ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}},
	}
	return []*admissionregistrationv1.ValidatingWebhookConfiguration{v}, []*admissionregistrationv1.MutatingWebhookConfiguration{m}
}

// Process is a running ec2guard binary with its metrics endpoint.
type Process struct {
	*binproc.Process
	MetricsURL string
}

// Metrics scrapes the process's /metrics.
func (p *Process) Metrics(tb testing.TB) binproc.Metrics {
	tb.Helper()
	m, err := binproc.Scrape(p.MetricsURL)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// RawMetrics returns the text of the process's /metrics.
func (p *Process) RawMetrics() (string, error) {
	resp, err := http.Get(p.MetricsURL)
	if err != nil {
		return "", fmt.Errorf("scrape %s: %w", p.MetricsURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p.MetricsURL, err)
	}
	return string(b), nil
}

// StartWebhook builds cmd/webhook and runs it (RunWebhook).
func StartWebhook(tb testing.TB, env *k8senv.Env, awsEndpoint string, args ...string) *Process {
	tb.Helper()
	return RunWebhook(tb, binproc.Build(tb, "webhook"), env, awsEndpoint, args...)
}

// RunWebhook runs the webhook binary bin on env's webhook port with its certificate, AWS at
// awsEndpoint, and waits until it is ready and serves its metrics. args are added to the command line (a flag given
// again there wins).
func RunWebhook(tb testing.TB, bin string, env *k8senv.Env, awsEndpoint string, args ...string) *Process {
	tb.Helper()
	metricsAddr, healthAddr := binproc.FreeAddr(tb), binproc.FreeAddr(tb)
	full := append([]string{
		"--kubeconfig=" + env.KubeconfigPath,
		"--webhook-host=" + env.Webhook.Host,
		"--webhook-port=" + strconv.Itoa(env.Webhook.Port),
		"--cert-dir=" + env.Webhook.CertDir,
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + healthAddr,
		"--aws-endpoint=" + awsEndpoint,
	}, args...)
	p := &Process{Process: binproc.Start(tb, bin, full...), MetricsURL: "http://" + metricsAddr + "/metrics"}
	p.RequireReady(tb, "http://"+healthAddr+"/readyz", readyTimeout)
	// Readiness does not cover the metrics server, which callers scrape next.
	p.RequireReady(tb, p.MetricsURL, readyTimeout)
	return p
}

// StartDiscoverer builds and runs cmd/discoverer against env with AWS at awsEndpoint, leader
// election off, and waits until its metrics endpoint answers. args are added to the command line.
func StartDiscoverer(tb testing.TB, env *k8senv.Env, awsEndpoint string, args ...string) *Process {
	tb.Helper()
	metricsAddr := binproc.FreeAddr(tb)
	full := append([]string{
		"--kubeconfig=" + env.KubeconfigPath,
		"--aws-endpoint=" + awsEndpoint,
		"--leader-elect=false",
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=0",
	}, args...)
	p := &Process{Process: binproc.Start(tb, binproc.Build(tb, "discoverer"), full...), MetricsURL: "http://" + metricsAddr + "/metrics"}
	p.RequireReady(tb, p.MetricsURL, readyTimeout)
	return p
}
