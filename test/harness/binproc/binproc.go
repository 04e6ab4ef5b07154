// Package binproc builds ec2guard's commands and runs binaries as processes for tests, benchmarks
// and the demo: each in a process group of its own with its output in a log file, an environment
// without the machine's AWS configuration, a readiness wait, a stop that sends SIGTERM to the group
// and SIGKILL after a grace period (so nothing it started is left running, also when a test fails),
// Prometheus scrapes, and CPU and memory readings from /proc.
package binproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/procfs"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

const (
	// DefaultStopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
	DefaultStopTimeout = 20 * time.Second
	// failureLogTail is how much of the log a failed test prints.
	failureLogTail = 32 << 10
	buildTimeout   = 10 * time.Minute
	pollInterval   = 100 * time.Millisecond
)

// BuildInto compiles the repository's packages (paths relative to its root, such as ./cmd/webhook)
// into dir with one `go build`; each binary is named after its package's directory. The Go build
// cache makes every build after the first a link.
func BuildInto(ctx context.Context, dir string, pkgs ...string) error {
	root, err := k8senv.RepoRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args := append([]string{"build", "-C", root, "-o", dir + string(filepath.Separator)}, pkgs...)
	if out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// BuildPackages compiles the repository's packages into a test directory and returns it.
func BuildPackages(tb testing.TB, pkgs ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := BuildInto(context.Background(), dir, pkgs...); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Build compiles ./cmd/<name> of the repository into a test directory and returns the binary.
func Build(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(BuildPackages(tb, "./cmd/"+name), name)
}

// LoopbackAddr returns 127.0.0.1:PORT with a port nobody listens on.
func LoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free loopback port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("pick a free loopback port: %w", err)
	}
	return addr, nil
}

// FreeAddr is LoopbackAddr for a test.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	addr, err := LoopbackAddr()
	if err != nil {
		tb.Fatal(err)
	}
	return addr
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(tb testing.TB) int {
	tb.Helper()
	addr, err := net.ResolveTCPAddr("tcp", FreeAddr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return addr.Port
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

// Config is a process to run.
type Config struct {
	// Bin is the executable and Args its arguments.
	Bin  string
	Args []string
	// Name names the process in messages and its default log file. Default: the base name of Bin.
	Name string
	// Env is the process's environment. Default: Env().
	Env []string
	// Dir is the working directory. Default: the caller's.
	Dir string
	// LogPath receives the process's stdout and stderr, appended. Launch requires it; StartConfig
	// defaults it to <Name>.log in a test directory.
	LogPath string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL. Default: DefaultStopTimeout.
	StopTimeout time.Duration
}

// Process is a running command, the leader of a process group of its own.
type Process struct {
	// LogPath holds the process's output.
	LogPath string

	name        string
	cmd         *exec.Cmd
	stopTimeout time.Duration
	done        chan struct{}
	waitErr     error // set before done is closed

	stopOnce sync.Once
	stopErr  error
}

// Launch starts c without a test: the caller must Stop the process (the demo does so from its own
// cleanup). A test uses Start or StartConfig.
func Launch(c Config) (*Process, error) {
	if c.Name == "" {
		c.Name = filepath.Base(c.Bin)
	}
	if c.Env == nil {
		c.Env = Env()
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	if c.LogPath == "" {
		return nil, fmt.Errorf("start %s: no log file given", c.Name)
	}
	logFile, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: opening its log: %w", c.Name, err)
	}
	defer logFile.Close() // the child has its own descriptor
	p := &Process{LogPath: c.LogPath, name: c.Name, stopTimeout: c.StopTimeout, done: make(chan struct{})}
	p.cmd = exec.Command(c.Bin, c.Args...)
	p.cmd.Env = c.Env
	p.cmd.Dir = c.Dir
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", c.Name, c.Bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Start runs bin with args (StartConfig with the defaults).
func Start(tb testing.TB, bin string, args ...string) *Process {
	tb.Helper()
	return StartConfig(tb, Config{Bin: bin, Args: args})
}

// StartConfig launches c for a test. On cleanup it stops the process group (Stop) and prints the
// end of the log if the test failed. It does not judge how the process ended: see CheckExit.
func StartConfig(tb testing.TB, c Config) *Process {
	tb.Helper()
	if c.LogPath == "" {
		name := c.Name
		if name == "" {
			name = filepath.Base(c.Bin)
		}
		c.LogPath = filepath.Join(tb.TempDir(), name+".log")
	}
	p, err := Launch(c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = p.Stop()
		if tb.Failed() {
			tb.Logf("%s log (last %d KiB, %s):\n%s", p.name, failureLogTail>>10, p.LogPath, p.Tail(failureLogTail))
		}
	})
	return p
}

// CheckExit makes tb fail if the process ends by itself before tb's cleanups, or does not exit
// with status 0 within the stop timeout of SIGTERM. It registers a cleanup that stops the process;
// after a Stop or Kill by the test itself, judging the outcome is the test's (Stop returns it).
func (p *Process) CheckExit(tb testing.TB) {
	tb.Cleanup(func() {
		if first, err := p.stop(false); first && err != nil {
			tb.Error(err)
		}
	})
}

// Stop ends the process group: SIGTERM, SIGKILL after the stop timeout, and SIGKILL to whatever is
// left in the group once the process has exited. It waits for the process and returns an error
// if it had exited before Stop was called, did not exit with status 0 on SIGTERM, or had to be
// killed. Only the first Stop or Kill acts; later calls return the first outcome.
func (p *Process) Stop() error {
	_, err := p.stop(false)
	return err
}

// Kill ends the process group at once (SIGKILL: no cleanup, as when a node dies) and waits.
func (p *Process) Kill() {
	_, _ = p.stop(true)
}

func (p *Process) stop(kill bool) (first bool, err error) {
	p.stopOnce.Do(func() {
		first = true
		p.stopErr = p.terminate(kill)
	})
	return first, p.stopErr
}

func (p *Process) terminate(kill bool) error {
	pgid := p.cmd.Process.Pid
	// Anything left in the group (there should be nothing) goes too; ESRCH when nothing is.
	defer func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) }()
	select {
	case <-p.done:
		return fmt.Errorf("%s exited before it was stopped: %s (log: %s)", p.name, exitStatus(p.waitErr), p.LogPath)
	default:
	}
	if kill {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		return nil
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	timer := time.NewTimer(p.stopTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s did not exit cleanly on SIGTERM: %v (log: %s)", p.name, p.waitErr, p.LogPath)
		}
		return nil
	case <-timer.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s ignored SIGTERM for %s and was killed (log: %s)", p.name, p.stopTimeout, p.LogPath)
	}
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Signal sends sig to the process alone (not its group): how a user's Ctrl-C reaches a program
// that must then stop what it started itself.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// Pid is the process's id, which is also its process group's.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is how the process ended (nil: status 0); valid once Done is closed.
func (p *Process) ExitErr() error {
	<-p.done
	return p.waitErr
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log returns the whole log.
func (p *Process) Log() (string, error) {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "", fmt.Errorf("read the log of %s: %w", p.name, err)
	}
	return string(b), nil
}

// Tail returns the last n bytes of the log (or why it cannot be read).
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

// WaitReady polls url until it answers 200; it fails when the process exits first or ctx ends.
func (p *Process) WaitReady(ctx context.Context, url string) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("%s readiness: %w", p.name, err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
		} else if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%s); log %s:\n%s", p.name, exitStatus(p.waitErr), p.LogPath, p.Tail(8<<10))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s (last: %s; log: %s): %w", p.name, url, last, p.LogPath, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// RequireReady is WaitReady for a test: it fails tb (FailNow) unless url answers 200 within
// timeout.
func (p *Process) RequireReady(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.WaitReady(ctx, url); err != nil {
		tb.Fatal(err)
	}
}

// Usage is the process's CPU time and memory so far.
type Usage struct {
	CPU                   time.Duration
	RSSBytes, PeakRSSByte uint64
}

// Usage reads /proc.
func (p *Process) Usage() (Usage, error) {
	pid := p.cmd.Process.Pid
	pr, err := procfs.NewProc(pid)
	if err != nil {
		return Usage{}, fmt.Errorf("read /proc of %d: %w", pid, err)
	}
	st, err := pr.Stat()
	if err != nil {
		return Usage{}, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
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
