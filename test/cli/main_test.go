// Package cli_test runs the ec2guard CLI binary as a user would: against a real kube-apiserver
// (k8senv) with the webhook's handlers served through it, against moto as AWS, and every command
// of the README's "Using the CLI" section.
package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// binPath is the ec2guard binary built for these tests.
var binPath string

func TestMain(m *testing.M) {
	k8senv.LogTo(os.Stderr)
	dir, err := os.MkdirTemp("", "ec2guard-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := binproc.BuildInto(context.Background(), dir, "./cmd/ec2guard"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		binPath = filepath.Join(dir, "ec2guard")
		return m.Run()
	}()
	os.Exit(code)
}

// result is one run of a command.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCmd runs name args... in dir with env added to a minimal environment (no AWS variables of the
// machine), bounded by a minute.
func runCmd(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(t), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %q: %v", name, args, err)
	}
	return r
}

// baseEnv keeps PATH, HOME and the Go variables, and shuts out the machine's AWS configuration.
func baseEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{"HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none"), "AWS_EC2_METADATA_DISABLED=true", "NO_COLOR="}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PATH", strings.HasPrefix(k, "GO"), k == "XDG_CACHE_HOME", k == "EC2GUARD_CACHE":
			env = append(env, kv)
		}
	}
	if os.Getenv("GOCACHE") == "" {
		if c, err := os.UserCacheDir(); err == nil {
			env = append(env, "GOCACHE="+filepath.Join(c, "go-build"))
		}
	}
	if os.Getenv("GOMODCACHE") == "" && os.Getenv("GOPATH") == "" {
		if h, err := os.UserHomeDir(); err == nil {
			env = append(env, "GOPATH="+filepath.Join(h, "go"))
		}
	}
	return env
}

// ec2guard runs the built binary.
func ec2guard(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runCmd(t, "", env, binPath, args...)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
