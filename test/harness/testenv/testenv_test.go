package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how Require ended the test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, a ...any) {
	r.fatal = fmt.Sprintf(format, a...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) {
	r.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

// require runs Require with r in a goroutine of its own, as a test runs, so that Goexit ends it.
func require(r *recorder, name string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Require(r, name)
	}()
	<-done
}

func TestRequire(t *testing.T) {
	t.Setenv("EC2GUARD_MOTO_SERVER", "/x/moto_server")
	if got := Require(t, "EC2GUARD_MOTO_SERVER"); got != "/x/moto_server" {
		t.Errorf("Require = %q", got)
	}

	t.Setenv("EC2GUARD_MOTO_SERVER", "")
	t.Setenv(IntegrationEnv, "")
	r := &recorder{TB: t}
	require(r, "EC2GUARD_MOTO_SERVER")
	if r.fatal != "" || !strings.Contains(r.skip, "make test-env") || !strings.Contains(r.skip, "hack/moto.sh") {
		t.Errorf("without the part: skip %q, fatal %q; want a skip naming make test-env and hack/moto.sh", r.skip, r.fatal)
	}

	t.Setenv(IntegrationEnv, "1")
	r = &recorder{TB: t}
	require(r, "EC2GUARD_MOTO_SERVER")
	if r.fatal == "" || r.skip != "" {
		t.Errorf("under %s=1: skip %q, fatal %q; want a failure", IntegrationEnv, r.skip, r.fatal)
	}
}
