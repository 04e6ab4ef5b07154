package k8senv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// Kubectl runs $EC2GUARD_KUBECTL as a separate process against the API
// server, as the admin user (--kubeconfig is set; pass --as / --as-group in
// args to impersonate someone else). err is non-nil when kubectl could not
// run or exited non-zero; it then wraps the *exec.ExitError.
func (e *Env) Kubectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return e.KubectlWithInput(ctx, nil, args...)
}

// KubectlWithInput is Kubectl with stdin connected to input (e.g. for
// `apply -f -`). A nil input gives kubectl an empty stdin.
func (e *Env) KubectlWithInput(ctx context.Context, input io.Reader, args ...string) (stdout, stderr string, err error) {
	if e.kubectlPath == "" {
		return "", "", fmt.Errorf("running kubectl: %s is not set: run `make test-env` and source its exports (hack/k8s-assets.sh)", KubectlEnv)
	}
	full := append([]string{"--kubeconfig", e.KubeconfigPath, "--cache-dir", e.cacheDir}, args...)
	cmd := exec.CommandContext(ctx, e.kubectlPath, full...)
	cmd.Stdin = input
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	runErr := cmd.Run()
	stdout, stderr = out.String(), errOut.String()
	if runErr != nil {
		var exitErr *exec.ExitError
		if errors.As(runErr, &exitErr) {
			return stdout, stderr, fmt.Errorf("kubectl %s: exit code %d: %w", strings.Join(args, " "), exitErr.ExitCode(), runErr)
		}
		return stdout, stderr, fmt.Errorf("running %s %s: %w", e.kubectlPath, strings.Join(args, " "), runErr)
	}
	return stdout, stderr, nil
}

// KubectlPath is the kubectl binary Kubectl runs ("" when $EC2GUARD_KUBECTL is unset).
func (e *Env) KubectlPath() string { return e.kubectlPath }
