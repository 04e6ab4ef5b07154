package binproc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// sh runs a shell script through StartConfig.
func sh(t *testing.T, script string, stopTimeout time.Duration) *Process {
	t.Helper()
	return StartConfig(t, Config{Bin: "/bin/sh", Args: []string{"-c", script}, StopTimeout: stopTimeout})
}

// waitLog waits until the log holds want (the script has reached that point).
func waitLog(t *testing.T, p *Process, want string) {
	t.Helper()
	poll.Until(t, 30*time.Second, "the log to say "+want, func() (bool, string) {
		s, err := p.Log()
		return err == nil && strings.Contains(s, want), s
	})
}

func TestStopCleanExitAndLeftovers(t *testing.T) {
	// The child ignores SIGTERM (an ignored signal stays ignored across exec) and outlives the
	// script, which exits 0 on SIGTERM: Stop is clean and the child is killed with the group.
	p := sh(t, `(trap "" TERM; exec sleep 60) & echo "child $!"; trap "exit 0" TERM; while :; do sleep 0.1; done`, 10*time.Second)
	waitLog(t, p, "child ")
	kids, err := Descendants(p.Pid())
	if err != nil || len(kids) == 0 {
		t.Fatalf("Descendants = %v, %v", kids, err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop = %v, want a clean exit", err)
	}
	poll.Until(t, 10*time.Second, "the script's children to be gone", func() (bool, string) {
		for _, k := range kids {
			if Alive(k) {
				return false, CommandLine(k)
			}
		}
		return true, ""
	})
	if err := p.Stop(); err != nil {
		t.Errorf("a second Stop = %v, want the first outcome (nil)", err)
	}
}

func TestStopKillsWhatIgnoresTERM(t *testing.T) {
	p := sh(t, `trap "" TERM; echo ready; while :; do sleep 0.1; done`, 300*time.Millisecond)
	waitLog(t, p, "ready")
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "ignored SIGTERM") {
		t.Errorf("Stop = %v, want that it ignored SIGTERM and was killed", err)
	}
	if !p.Exited() {
		t.Error("still running after Stop")
	}
}

func TestStopAfterItExited(t *testing.T) {
	p := sh(t, "echo bye; exit 3", 0)
	<-p.Done()
	err := p.Stop()
	if err == nil || !strings.Contains(err.Error(), "exited before it was stopped: exit status 3") {
		t.Errorf("Stop = %v, want that it had exited with status 3", err)
	}
	if log, _ := p.Log(); log != "bye\n" {
		t.Errorf("log %q, want the script's output", log)
	}
}

func TestKill(t *testing.T) {
	p := sh(t, `trap "" TERM; echo ready; while :; do sleep 0.1; done`, time.Minute)
	waitLog(t, p, "ready")
	p.Kill()
	var ee *exec.ExitError
	if err := p.ExitErr(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("exit %v, want SIGKILL", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after Kill = %v, want nil (Kill's outcome)", err)
	}
}

// recorder is a testing.TB that records errors and cleanups instead of failing the test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	cleanups []func()
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Error(args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range args {
		r.errors = append(r.errors, a.(error).Error())
	}
}
func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestCheckExit(t *testing.T) {
	for _, c := range []struct {
		name, script string
		stopFirst    bool
		want         string
	}{
		{"clean", `trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done`, false, ""},
		{"crashed", `echo ready; exit 2`, false, "exited before it was stopped: exit status 2"},
		{"unclean", `trap "exit 1" TERM; echo ready; while :; do sleep 0.1; done`, false, "did not exit cleanly on SIGTERM: exit status 1"},
		{"stopped by the test", `trap "exit 1" TERM; echo ready; while :; do sleep 0.1; done`, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := sh(t, c.script, 10*time.Second)
			r := &recorder{TB: t}
			p.CheckExit(r)
			waitLog(t, p, "ready")
			if c.stopFirst {
				if err := p.Stop(); err == nil {
					t.Error("Stop of a process that exits 1 on SIGTERM = nil")
				}
			}
			if c.name == "crashed" {
				<-p.Done()
			}
			r.runCleanups()
			got := strings.Join(r.errors, "; ")
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Errorf("CheckExit reported %q, want %q", got, c.want)
			}
		})
	}
}

func TestWaitReady(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "informers not synced", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()

	running := sh(t, `trap "exit 0" TERM; while :; do sleep 0.1; done`, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := running.WaitReady(ctx, ready.URL); err != nil {
		t.Errorf("WaitReady on a 200 endpoint: %v", err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelShort()
	if err := running.WaitReady(short, notReady.URL); err == nil || !strings.Contains(err.Error(), "informers not synced") {
		t.Errorf("WaitReady on a 503 endpoint = %v, want the last answer named", err)
	}

	exits := sh(t, "echo failing to start; exit 1", 0)
	if err := exits.WaitReady(ctx, notReady.URL); err == nil || !strings.Contains(err.Error(), "exited before it was ready") ||
		!strings.Contains(err.Error(), "failing to start") {
		t.Errorf("WaitReady on a process that exits = %v, want that it exited, with its log", err)
	}
}

func TestLaunchNeedsALog(t *testing.T) {
	if _, err := Launch(Config{Bin: "/bin/true"}); err == nil {
		t.Error("Launch without LogPath started the process")
	}
	if _, err := Launch(Config{Bin: filepath.Join(t.TempDir(), "missing"), LogPath: filepath.Join(t.TempDir(), "log")}); err == nil {
		t.Error("Launch of a missing binary: no error")
	}
}
