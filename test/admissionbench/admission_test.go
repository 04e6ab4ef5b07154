package admissionbench

import (
	"github.com/ec2guard/ec2guard/test/harness/awsfault"

	"testing"
	"time"
)

// TestAdmission checks the harness at small scale: every request of the workload is admitted
// through the real API server with the webhooks registered (and annotated by the mutating one)
// and without them (not annotated); and a burst of concurrent first requests for new credentials
// makes no more AWS calls than one first request does (one collection, shared).
func TestAdmission(t *testing.T) {
	b := newBench(t)
	secret := b.newSecret(t)
	b.waitWebhook(t, secret)

	if lat := b.run(t, 5, 20, secret); len(lat) != 20 {
		t.Fatalf("%d requests made, want 20", len(lat))
	}
	if got := b.lastAnnotations(t)["ec2guard.io/iam-decision"]; got != "allowed" {
		t.Errorf("with the webhooks: iam-decision %q, want allowed (annotations %v)", got, b.lastAnnotations(t))
	}
	b.setRegistered(t, false, secret)
	if lat := b.run(t, 5, 20, secret); len(lat) != 20 {
		t.Fatalf("baseline: %d requests made, want 20", len(lat))
	}
	if a := b.lastAnnotations(t); len(a) != 0 {
		t.Errorf("baseline: annotations %v, want none (no webhook)", a)
	}
	b.setRegistered(t, true, secret)

	b.proxy.SetLatency(50 * time.Millisecond)
	single := b.newSecret(t)
	before := b.proxy.Calls()
	b.burst(t, 1, single)
	one := awsfault.Since(before, b.proxy.Calls())
	shared := b.newSecret(t)
	before = b.proxy.Calls()
	b.burst(t, 20, shared)
	burst := awsfault.Since(before, b.proxy.Calls())
	t.Logf("AWS calls of one first request %v; of 20 concurrent first requests %v", one, burst)
	if awsfault.Total(one) == 0 {
		t.Fatal("a first request for new credentials made no AWS call: the harness does not see them")
	}
	if awsfault.Total(burst) > awsfault.Total(one) {
		t.Errorf("20 concurrent first requests made %d AWS calls, one makes %d: concurrent requests for the same credentials must share one collection", awsfault.Total(burst), awsfault.Total(one))
	}
}
