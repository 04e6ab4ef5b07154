package admissionbench

import (
	"os"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// The processes whose CPU time the benchmark reads, by the name /proc gives them.
var cpuProcesses = []string{"kube-apiserver", "etcd", "webhook", "moto_server"}

// clientsProcess names the benchmark's own process: the clients (and the AWS proxy, idle when warm).
const clientsProcess = "clients"

// cpuTimes reads the CPU time (user + system) of the benchmark's own process and of its child
// processes named in cpuProcesses (the API server and etcd envtest started, the webhook, moto).
func cpuTimes(tb testing.TB) map[string]time.Duration {
	tb.Helper()
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		tb.Fatal(err)
	}
	self := os.Getpid()
	procs, err := fs.AllProcs()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // ended since the listing
		}
		name := ""
		switch {
		case p.PID == self:
			name = clientsProcess
		case st.PPID == self:
			for _, n := range cpuProcesses {
				if st.Comm == n || (len(st.Comm) == 15 && len(n) > 15 && n[:15] == st.Comm) {
					name = n
				}
			}
		}
		if name != "" {
			out[name] += time.Duration(st.CPUTime() * float64(time.Second))
		}
	}
	for _, n := range []string{"kube-apiserver", "etcd", "webhook", clientsProcess} {
		if _, ok := out[n]; !ok {
			tb.Fatalf("no process %s among the benchmark's children", n)
		}
	}
	return out
}

// cpuSince is the CPU time each process spent between two readings.
func cpuSince(before, after map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for n, t := range after {
		out[n] = t - before[n]
	}
	return out
}
