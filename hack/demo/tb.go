package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// sessionTB lets the demo use the integration test harness (test/harness/k8senv and awsemu, made
// for tests) outside `go test`. It behaves like *testing.T where the harness relies on it:
// Cleanup functions run last-in first-out at the end, FailNow/Fatal end the calling goroutine
// (runtime.Goexit, as testing does), Error/Fatal mark the session failed and print to stderr,
// Log goes to the harness log, and TempDir hands out directories under the demo's log directory
// (kept, so the harness's files stay with the logs).
//
// The embedded testing.TB is nil: it only supplies the interface's unexported method. Every
// method of testing.TB the harness and package demo call is defined below.
type sessionTB struct {
	testing.TB

	dir string
	log io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	tempDirs int
}

func newSessionTB(dir string, log io.Writer) *sessionTB {
	return &sessionTB{dir: dir, log: log}
}

// do runs f as a test body: in a goroutine of its own, so that FailNow can end it. It returns f's
// error, or an error saying that the session was stopped by a fatal failure.
func (s *sessionTB) do(f func() error) error {
	done := make(chan struct{})
	var err error
	returned := false
	go func() {
		defer close(done)
		err = f()
		returned = true
	}()
	<-done
	if !returned {
		return errors.New("stopped by the failure above")
	}
	return err
}

// cleanup runs the registered functions, last registered first; a panicking one is reported and
// the others still run.
func (s *sessionTB) cleanup() {
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			s.mu.Unlock()
			return
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		_ = s.do(func() error {
			defer func() {
				if r := recover(); r != nil {
					s.Errorf("cleanup panicked: %v", r)
				}
			}()
			f()
			return nil
		})
	}
}

func (s *sessionTB) Helper()      {}
func (s *sessionTB) Name() string { return "demo" }

func (s *sessionTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *sessionTB) Log(args ...any) { fmt.Fprintln(s.log, args...) }
func (s *sessionTB) Logf(format string, args ...any) {
	fmt.Fprintf(s.log, format+"\n", args...)
}

func (s *sessionTB) Error(args ...any) {
	s.Fail()
	msg := fmt.Sprintln(args...)
	fmt.Fprint(os.Stderr, "demo: ", msg)
	fmt.Fprint(s.log, "ERROR: ", msg)
}

func (s *sessionTB) Errorf(format string, args ...any) { s.Error(fmt.Sprintf(format, args...)) }

func (s *sessionTB) Fail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = true
}

func (s *sessionTB) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

func (s *sessionTB) FailNow() {
	s.Fail()
	runtime.Goexit()
}

func (s *sessionTB) Fatal(args ...any) {
	s.Error(args...)
	runtime.Goexit()
}

func (s *sessionTB) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	runtime.Goexit()
}

// Skip is how the harness says a part is missing (e.g. $KUBEBUILDER_ASSETS unset): for the demo
// that is a failure.
func (s *sessionTB) Skip(args ...any)                 { s.Fatal(args...) }
func (s *sessionTB) Skipf(format string, args ...any) { s.Fatalf(format, args...) }
func (s *sessionTB) SkipNow()                         { s.Fatal("skipped") }
func (s *sessionTB) Skipped() bool                    { return false }

func (s *sessionTB) TempDir() string {
	s.mu.Lock()
	s.tempDirs++
	dir := filepath.Join(s.dir, "tmp-"+strconv.Itoa(s.tempDirs))
	s.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.Fatalf("TempDir: %v", err)
	}
	return dir
}

func (s *sessionTB) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		s.Fatalf("Setenv %s: %v", key, err)
	}
	s.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

func (s *sessionTB) Context() context.Context { return context.Background() }
