package webhook_test

import (
	"testing"

	"github.com/ec2guard/ec2guard/test/harness/ec2guardproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// webhookProcess is cmd/webhook running as a separate process (test/harness/ec2guardproc).
type webhookProcess struct{ *ec2guardproc.Process }

// startWebhook runs bin (binproc.Build, once per test) on env's webhook port with AWS at
// awsEndpoint and args added, and waits until /readyz passes. The webhook must keep running until
// it is stopped and then exit cleanly on SIGTERM (CheckExit), at t's end or at stopNow.
func startWebhook(t *testing.T, bin string, env *k8senv.Env, awsEndpoint string, args ...string) *webhookProcess {
	t.Helper()
	p := ec2guardproc.RunWebhook(t, bin, env, awsEndpoint, append([]string{"--graceful-shutdown-timeout=10s"}, args...)...)
	p.CheckExit(t)
	return &webhookProcess{p}
}

// stopNow stops the webhook before the test ends (to start another with other flags) and checks
// that it exits cleanly.
func (p *webhookProcess) stopNow(t *testing.T) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
}

// log returns the webhook's output so far.
func (p *webhookProcess) log(t *testing.T) string {
	t.Helper()
	s, err := p.Log()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// metrics returns the /metrics page.
func (p *webhookProcess) metrics(t *testing.T) string {
	t.Helper()
	s, err := p.RawMetrics()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
