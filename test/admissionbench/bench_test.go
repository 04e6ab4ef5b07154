package admissionbench

import (
	"github.com/ec2guard/ec2guard/test/harness/awsfault"

	"fmt"
	"io"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/binproc"
)

// phase is one measured workload.
type phase struct {
	name              string
	clients, requests int
	base, with        []time.Duration
	// apiserver p50/p99 of the webhook admission durations (validating, mutating) in the run with
	// the webhooks, in seconds.
	valP50, valP99, mutP50, mutP99 float64
	awsCalls                       int
}

const webhookDuration = "apiserver_admission_webhook_admission_duration_seconds"

// BenchmarkAdmission measures the latency ec2guard adds to creating and updating EC2 Upstreams
// through the API server (make bench-admission): warm (IAM results cached) at 1, 10 and 100
// concurrent clients against the same workload with the webhooks removed, in the same run; and
// cold (new credentials, 50 ms added to every AWS call): one first request at a time, and a burst
// of 100 first requests for the same new credentials. It runs once whatever b.N is.
func BenchmarkAdmission(b *testing.B) {
	if b.N > 1 {
		b.Skip("runs once: use -benchtime=1x")
	}
	x := newBench(b)
	secret := x.newSecret(b)
	x.waitWebhook(b, secret)
	x.run(b, 10, 100, secret) // warm up: the secret's IAM result, the access review, connections

	var phases []phase
	for _, c := range []struct{ clients, requests int }{{1, 200}, {10, 500}, {100, 1000}} {
		p := phase{name: "warm", clients: c.clients, requests: c.requests}
		x.setRegistered(b, false, secret)
		p.base = x.run(b, c.clients, c.requests, secret)
		x.setRegistered(b, true, secret)
		before := x.apiserverMetrics(b)
		calls := x.proxy.Calls()
		p.with = x.run(b, c.clients, c.requests, secret)
		x.apiserverQuantiles(b, &p, before)
		p.awsCalls = awsfault.Total(awsfault.Since(calls, x.proxy.Calls()))
		phases = append(phases, p)
	}

	x.proxy.SetLatency(50 * time.Millisecond)
	cold := phase{name: "cold, one at a time (50 ms per AWS call)", clients: 1, requests: 10}
	before := x.apiserverMetrics(b)
	calls := x.proxy.Calls()
	for range cold.requests {
		cold.with = append(cold.with, x.burst(b, 1, x.newSecret(b))...)
	}
	x.apiserverQuantiles(b, &cold, before)
	cold.awsCalls = awsfault.Total(awsfault.Since(calls, x.proxy.Calls()))
	phases = append(phases, cold)

	burst := phase{name: "cold burst, same new credentials (50 ms per AWS call)", clients: 100, requests: 100}
	shared := x.newSecret(b)
	before = x.apiserverMetrics(b)
	calls = x.proxy.Calls()
	burst.with = x.burst(b, burst.clients, shared)
	x.apiserverQuantiles(b, &burst, before)
	burst.awsCalls = awsfault.Total(awsfault.Since(calls, x.proxy.Calls()))
	phases = append(phases, burst)

	printAdmission(os.Stdout, phases)
}

func (x *bench) apiserverQuantiles(tb testing.TB, p *phase, before binproc.Metrics) {
	tb.Helper()
	after := x.apiserverMetrics(tb)
	for _, typ := range []string{"validating", "admit"} {
		match := map[string]string{"type": typ}
		_, _, b0 := before.Histogram(webhookDuration, match)
		_, _, b1 := after.Histogram(webhookDuration, match)
		p50, p99 := histogramQuantile(0.5, b0, b1), histogramQuantile(0.99, b0, b1)
		if typ == "validating" {
			p.valP50, p.valP99 = p50, p99
		} else {
			p.mutP50, p.mutP99 = p50, p99
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func printAdmission(w io.Writer, phases []phase) {
	fmt.Fprintln(w, "\nlatency of create/update of an EC2 Upstream through the API server, as a user bound to a narrow Role, secret in another namespace (ms)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tclients\trequests\tbaseline p50\tp90\tp99\twith ec2guard p50\tp90\tp99\tadded p50\tp90\tp99\tapiserver validating p50\tp99\tmutating p50\tp99\tAWS calls\t")
	for _, p := range phases {
		bp50, bp90, bp99 := "-", "-", "-"
		ap50, ap90, ap99 := "-", "-", "-"
		w50, w90, w99 := percentile(p.with, 0.5), percentile(p.with, 0.9), percentile(p.with, 0.99)
		if len(p.base) > 0 {
			b50, b90, b99 := percentile(p.base, 0.5), percentile(p.base, 0.9), percentile(p.base, 0.99)
			bp50, bp90, bp99 = ms(b50), ms(b90), ms(b99)
			ap50, ap90, ap99 = ms(w50-b50), ms(w90-b90), ms(w99-b99)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n",
			p.name, p.clients, len(p.with), bp50, bp90, bp99, ms(w50), ms(w90), ms(w99), ap50, ap90, ap99,
			p.valP50*1000, p.valP99*1000, p.mutP50*1000, p.mutP99*1000, p.awsCalls)
	}
	_ = tw.Flush()
}
