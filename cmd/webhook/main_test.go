package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/internal/commonflags"
)

func TestRunExitCodes(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"--enforce-iam-deny=maybe"}, &out); code != 2 || !strings.Contains(out.String(), "enforce-iam-deny") {
		t.Errorf("bad flag: exit %d, output %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"--kubeconfig=/nonexistent/kubeconfig", "--metrics-bind-address=0", "--health-probe-bind-address=0"}, &out); code != 1 ||
		!strings.Contains(out.String(), "/nonexistent/kubeconfig") {
		t.Errorf("bad kubeconfig: exit %d, output %q", code, out.String())
	}
}

func TestLogLevelNames(t *testing.T) {
	var out bytes.Buffer
	log := newSlogger(&config{log: commonflags.Logging{Level: "debug", Format: "json"}}, &out)
	log.Log(context.Background(), slog.Level(-1), "v1 message")
	log.Info("info message")
	if got := out.String(); !strings.Contains(got, `"level":"DEBUG","msg":"v1 message"`) || !strings.Contains(got, `"level":"INFO","msg":"info message"`) {
		t.Errorf("log output:\n%s", got)
	}
	out.Reset()
	quiet := newSlogger(&config{log: commonflags.Logging{Level: "info", Format: "text"}}, &out)
	quiet.Log(context.Background(), slog.Level(-1), "hidden")
	if out.Len() != 0 {
		t.Errorf("info level printed %q", out.String())
	}
}
