package webhook_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/binproc"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

const (
	readyTimeout    = 60 * time.Second
	shutdownTimeout = 30 * time.Second
)

// webhookProcess is cmd/webhook running as a separate process.
type webhookProcess struct {
	cmd         *exec.Cmd
	logPath     string
	metricsAddr string
	healthAddr  string
	exited      chan struct{}
	waitErr     error // set before exited is closed
	stopped     bool  // stopped by the test before its end (stopNow)
}

// buildWebhook compiles cmd/webhook into a temporary directory.
func buildWebhook(t *testing.T) string { return binproc.Build(t, "webhook") }

// startWebhook runs the binary against env with args added to the serving flags, waits until
// /readyz passes, and on cleanup stops it with SIGTERM and checks that it exits cleanly.
func startWebhook(t *testing.T, bin string, env *k8senv.Env, args ...string) *webhookProcess {
	t.Helper()
	p := &webhookProcess{
		logPath:     filepath.Join(t.TempDir(), "webhook.log"),
		metricsAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		healthAddr:  "127.0.0.1:" + strconv.Itoa(freePort(t)),
		exited:      make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{
		"--kubeconfig=" + env.KubeconfigPath,
		"--webhook-host=" + env.Webhook.Host,
		"--webhook-port=" + strconv.Itoa(env.Webhook.Port),
		"--cert-dir=" + env.Webhook.CertDir,
		"--metrics-bind-address=" + p.metricsAddr,
		"--health-probe-bind-address=" + p.healthAddr,
		"--graceful-shutdown-timeout=10s",
	}, args...)
	p.cmd = exec.Command(bin, full...)
	p.cmd.Env = webhookEnv()
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	_ = logFile.Close() // the child has its own descriptor
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(t)
		switch {
		case t.Failed():
			t.Logf("webhook log (%s):\n%s", p.logPath, tailFile(p.logPath, 64<<10))
		case testing.Verbose():
			t.Logf("webhook log, last lines:\n%s", tailFile(p.logPath, 6<<10))
		}
	})
	if err := p.waitReady(); err != nil {
		t.Fatalf("webhook not ready: %v", err)
	}
	return p
}

// webhookEnv is the test's environment without AWS configuration (the webhook must only ever
// reach the emulator given with --aws-endpoint).
func webhookEnv() []string { return binproc.Env() }

func (p *webhookProcess) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("the webhook exited: %v", p.waitErr)
		default:
		}
		resp, err := http.Get("http://" + p.healthAddr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("/readyz did not pass within %s (last: %s)", readyTimeout, last)
}

// stopNow stops the webhook before the test ends (to start another with other flags).
func (p *webhookProcess) stopNow(t *testing.T) {
	p.stop(t)
	p.stopped = true
}

// stop sends SIGTERM and expects a clean exit within shutdownTimeout.
func (p *webhookProcess) stop(t *testing.T) {
	if p.stopped {
		return
	}
	select {
	case <-p.exited:
		t.Errorf("the webhook exited before the test ended: %v", p.waitErr)
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM to the webhook: %v", err)
	}
	select {
	case <-p.exited:
		var exitErr *exec.ExitError
		if errors.As(p.waitErr, &exitErr) || p.waitErr != nil {
			t.Errorf("the webhook did not shut down cleanly on SIGTERM: %v", p.waitErr)
		}
	case <-time.After(shutdownTimeout):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("the webhook ignored SIGTERM for %s", shutdownTimeout)
	}
}

// log returns the webhook's output so far.
func (p *webhookProcess) log(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metrics returns the /metrics page.
func (p *webhookProcess) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + p.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
