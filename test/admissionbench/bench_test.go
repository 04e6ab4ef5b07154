package admissionbench

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/awsfault"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
)

// phase is one measured workload.
type phase struct {
	name              string
	clients, requests int
	base, with        []time.Duration
	// apiserver mean and p99 of the webhook admission durations (validating, mutating) in the run
	// with the webhooks, in seconds (the histogram's first bucket is 5 ms: quantiles below it are
	// interpolations, the mean is exact).
	valMean, valP99, mutMean, mutP99 float64
	awsCalls                         int
	// CPU time of each process over the baseline run and the run with the webhooks.
	cpuBase, cpuWith map[string]time.Duration
	// In the run with the webhooks, from the webhook's metrics: admission requests it answered,
	// TLS handshakes (new connections) it completed, and the mean of its own handling time
	// (controller-runtime's, from reading the request to writing the answer; its histogram's
	// buckets are decades, too coarse for quantiles), in seconds.
	webhookRequests, handshakes, serveMean float64
}

const (
	webhookDuration = "apiserver_admission_webhook_admission_duration_seconds"
	serveDuration   = "controller_runtime_webhook_latency_seconds"
	handshakes      = "ec2guard_webhook_tls_handshakes_total"
	requests        = "ec2guard_admission_requests_total"
)

// cores the benchmark's processes share (for the closed-loop estimate of the added latency).
func cores() int { return runtime.NumCPU() }

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
		cpu := cpuTimes(b)
		p.base = x.run(b, c.clients, c.requests, secret)
		p.cpuBase = cpuSince(cpu, cpuTimes(b))
		x.setRegistered(b, true, secret)
		before, hook := x.apiserverMetrics(b), x.webhook.Metrics(b)
		calls := x.proxy.Calls()
		cpu = cpuTimes(b)
		p.with = x.run(b, c.clients, c.requests, secret)
		p.cpuWith = cpuSince(cpu, cpuTimes(b))
		x.apiserverQuantiles(b, &p, before)
		x.webhookFigures(b, &p, hook)
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
	printCPU(os.Stdout, phases[:3])
}

// webhookFigures reads the webhook's own counts for the run since the scrape before.
func (x *bench) webhookFigures(tb testing.TB, p *phase, before binproc.Metrics) {
	tb.Helper()
	after := x.webhook.Metrics(tb)
	p.webhookRequests = after.Sum(requests, nil) - before.Sum(requests, nil)
	p.handshakes = after.Sum(handshakes, nil) - before.Sum(handshakes, nil)
	n0, s0, _ := before.Histogram(serveDuration, nil)
	n1, s1, _ := after.Histogram(serveDuration, nil)
	if n1 > n0 {
		p.serveMean = (s1 - s0) / float64(n1-n0)
	}
}

func (x *bench) apiserverQuantiles(tb testing.TB, p *phase, before binproc.Metrics) {
	tb.Helper()
	after := x.apiserverMetrics(tb)
	for _, typ := range []string{"validating", "admit"} {
		match := map[string]string{"type": typ}
		n0, s0, b0 := before.Histogram(webhookDuration, match)
		n1, s1, b1 := after.Histogram(webhookDuration, match)
		mean, p99 := 0.0, histogramQuantile(0.99, b0, b1)
		if n1 > n0 {
			mean = (s1 - s0) / float64(n1-n0)
		}
		if typ == "validating" {
			p.valMean, p.valP99 = mean, p99
		} else {
			p.mutMean, p.mutP99 = mean, p99
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func printAdmission(w io.Writer, phases []phase) {
	fmt.Fprintln(w, "\nlatency of create/update of an EC2 Upstream through the API server, as a user bound to a narrow Role, secret in another namespace (ms)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tclients\trequests\tbaseline p50\tp90\tp99\twith ec2guard p50\tp90\tp99\tadded p50\tp90\tp99\tapiserver validating mean\tp99\tmutating mean\tp99\tAWS calls\t")
	for _, p := range phases {
		bp50, bp90, bp99 := "-", "-", "-"
		ap50, ap90, ap99 := "-", "-", "-"
		w50, w90, w99 := percentile(p.with, 0.5), percentile(p.with, 0.9), percentile(p.with, 0.99)
		if len(p.base) > 0 {
			b50, b90, b99 := percentile(p.base, 0.5), percentile(p.base, 0.9), percentile(p.base, 0.99)
			bp50, bp90, bp99 = ms(b50), ms(b90), ms(b99)
			ap50, ap90, ap99 = ms(w50-b50), ms(w90-b90), ms(w99-b99)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.1f\t%.2f\t%.1f\t%d\t\n",
			p.name, p.clients, len(p.with), bp50, bp90, bp99, ms(w50), ms(w90), ms(w99), ap50, ap90, ap99,
			p.valMean*1000, p.valP99*1000, p.mutMean*1000, p.mutP99*1000, p.awsCalls)
	}
	_ = tw.Flush()
}

// perRequest is a CPU time per request in ms.
func perRequest(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / 1000 / float64(n)
}

// printCPU prints, for the warm phases, the CPU time per create/update of each process without and
// with the webhooks, the webhook's connections and handling time, and what the added CPU per
// request predicts for the added latency of a closed loop at saturation: clients × added CPU per
// request / cores.
func printCPU(w io.Writer, phases []phase) {
	fmt.Fprintf(w, "\nCPU time per create/update (ms; /proc/<pid>/stat over each run; %d cores); the webhook's connections and handling time\n", cores())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tapiserver base\twith\tadded\tetcd base\twith\tclients base\twith\twebhook\ttotal added\tpredicted added latency\twebhook calls\tnew TLS connections per call\twebhook handling mean ms\t")
	for _, p := range phases {
		nb, nw := len(p.base), len(p.with)
		get := func(m map[string]time.Duration, name string, n int) float64 { return perRequest(m[name], n) }
		added := 0.0
		for _, name := range append(cpuProcesses, clientsProcess) {
			added += get(p.cpuWith, name, nw) - get(p.cpuBase, name, nb)
		}
		perCall := 0.0
		if p.webhookRequests > 0 {
			perCall = p.handshakes / p.webhookRequests
		}
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.1f ms\t%.0f\t%.2f\t%.3f\t\n", p.clients,
			get(p.cpuBase, "kube-apiserver", nb), get(p.cpuWith, "kube-apiserver", nw), get(p.cpuWith, "kube-apiserver", nw)-get(p.cpuBase, "kube-apiserver", nb),
			get(p.cpuBase, "etcd", nb), get(p.cpuWith, "etcd", nw),
			get(p.cpuBase, clientsProcess, nb), get(p.cpuWith, clientsProcess, nw),
			get(p.cpuWith, "webhook", nw), added, float64(p.clients)*added/float64(cores()),
			p.webhookRequests, perCall, p.serveMean*1000)
	}
	_ = tw.Flush()
}
