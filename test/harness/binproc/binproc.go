// Package binproc builds one of ec2guard's commands and runs it as a process for a test or a
// benchmark: its own process group, a log file, no AWS configuration from the machine, a readiness
// wait, Prometheus scrapes, CPU and memory readings from /proc, and a SIGTERM on cleanup.
package binproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// Build compiles ./cmd/<name> of the repository into a test directory. The Go build cache makes
// every build after the first a link.
func Build(tb testing.TB, name string) string {
	tb.Helper()
	root, err := k8senv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-C", root, "-o", path, "./cmd/"+name).CombinedOutput(); err != nil {
		tb.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	return path
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a running command.
type Process struct {
	cmd     *exec.Cmd
	LogPath string
	exited  chan struct{}
}

// Env is the environment of the test without AWS configuration, $KUBECONFIG or the endpoint
// override: the process reaches only what its flags name.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AWS_") || name == "KUBECONFIG" || name == "EC2GUARD_AWS_ENDPOINT" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// Start runs bin with args. On cleanup it sends SIGTERM to the process group, waits up to 20 s
// (then SIGKILL), and prints the end of the log if the test failed.
func Start(tb testing.TB, bin string, args ...string) *Process {
	tb.Helper()
	p := &Process{LogPath: filepath.Join(tb.TempDir(), filepath.Base(bin)+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = Env()
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	_ = logFile.Close()
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("%s log (last 8 KiB, %s):\n%s", filepath.Base(bin), p.LogPath, p.Tail(8<<10))
		}
	})
	return p
}

// Stop ends the process group (SIGTERM, then SIGKILL after 20 s) and waits for the process.
func (p *Process) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// Kill ends the process group at once (SIGKILL: no cleanup, as when a node dies) and waits.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Tail returns the last n bytes of the log.
func (p *Process) Tail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// WaitReady polls url until it answers 200, the process exits or timeout passes.
func (p *Process) WaitReady(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready; log:\n%s", p.Tail(8<<10))
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %s", url, timeout, last)
}

// Usage is the process's CPU time and memory so far.
type Usage struct {
	CPU                   time.Duration
	RSSBytes, PeakRSSByte uint64
}

// Usage reads /proc.
func (p *Process) Usage() (Usage, error) {
	pr, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return Usage{}, fmt.Errorf("read /proc of %d: %w", p.cmd.Process.Pid, err)
	}
	st, err := pr.Stat()
	if err != nil {
		return Usage{}, fmt.Errorf("read /proc/%d/stat: %w", p.cmd.Process.Pid, err)
	}
	u := Usage{CPU: time.Duration(st.CPUTime() * float64(time.Second)), RSSBytes: uint64(st.ResidentMemory())}
	if status, err := pr.NewStatus(); err == nil {
		u.PeakRSSByte = status.VmHWM
	}
	return u, nil
}

// Metrics is one scrape of a Prometheus endpoint.
type Metrics map[string]*dto.MetricFamily

// Scrape reads a Prometheus text endpoint.
func Scrape(url string) (Metrics, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	return Parse(resp.Body)
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Metrics, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return families, nil
}

// Sum adds the values of the counters and gauges of family name whose labels include every pair
// of match.
func (m Metrics) Sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, mt := range m.series(name, match) {
		switch {
		case mt.Counter != nil:
			total += mt.Counter.GetValue()
		case mt.Gauge != nil:
			total += mt.Gauge.GetValue()
		}
	}
	return total
}

// Histogram adds the histograms of family name whose labels include every pair of match: sample
// count, sum, and cumulative bucket counts by upper bound.
func (m Metrics) Histogram(name string, match map[string]string) (count uint64, sum float64, buckets map[float64]uint64) {
	buckets = map[float64]uint64{}
	for _, mt := range m.series(name, match) {
		h := mt.GetHistogram()
		if h == nil {
			continue
		}
		count += h.GetSampleCount()
		sum += h.GetSampleSum()
		for _, b := range h.Bucket {
			buckets[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	return count, sum, buckets
}

func (m Metrics) series(name string, match map[string]string) []*dto.Metric {
	mf, ok := m[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, mt := range mf.Metric {
		if hasLabels(mt, match) {
			out = append(out, mt)
		}
	}
	return out
}

func hasLabels(mt *dto.Metric, match map[string]string) bool {
	for k, v := range match {
		found := false
		for _, l := range mt.Label {
			if l.GetName() == k {
				found = l.GetValue() == v
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
