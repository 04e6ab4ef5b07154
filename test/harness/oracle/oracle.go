// Package oracle runs the independent IAM oracle — @cloud-copilot/iam-simulate behind
// test/oracle/oracle.mjs — on batches of cases in `ec2guard simulate --batch`'s case format (docs/cli.md), for
// differential tests of ec2guard's own IAM engine.
//
// The oracle is installed by hack/oracle.sh (run by `make test-env`), which prints
// `export EC2GUARD_ORACLE=<path of the script>`. iam-simulate is AGPL-licensed: it is fetched at
// test time and never part of ec2guard's build.
package oracle

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ec2guard/ec2guard/test/harness/testenv"
)

// EnvVar names the environment variable holding the absolute path of the oracle script.
const EnvVar = "EC2GUARD_ORACLE"

// IntegrationEnvVar, when "1", turns a missing oracle from a skip into a test failure.
const IntegrationEnvVar = testenv.IntegrationEnv

// Decisions the oracle reports.
const (
	Allowed      = "allowed"
	ExplicitDeny = "explicitDeny"
	ImplicitDeny = "implicitDeny"
)

// Case is one simulation case in `ec2guard simulate --batch`'s case format (docs/cli.md). Policy documents are kept as
// raw JSON so that tests can hand the oracle exactly the text they hand ec2guard. A nil
// json.RawMessage is sent as null (no such policy); nil lists are sent as null, which the oracle
// reads as empty.
type Case struct {
	ID                  string            `json:"id"`
	Request             Request           `json:"request"`
	IdentityPolicies    []json.RawMessage `json:"identityPolicies"`
	PermissionsBoundary json.RawMessage   `json:"permissionsBoundary"`
	// SCPs are organization levels, root first, each a list of the policies attached at that
	// level. Empty means no organization.
	SCPs [][]json.RawMessage `json:"scps"`
	// RCPs are organization levels like SCPs. iam-simulate adds AWS's RCPFullAWSAccess to every
	// level itself, as AWS does.
	RCPs           [][]json.RawMessage `json:"rcps"`
	ResourcePolicy json.RawMessage     `json:"resourcePolicy"`
	SessionPolicy  json.RawMessage     `json:"sessionPolicy"`
}

// Request is the request part of a Case.
type Request struct {
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	// ResourceAccount defaults (in the oracle) to the resource ARN's account, else the
	// principal's: a same-account request.
	ResourceAccount string `json:"resourceAccount,omitempty"`
	// Context maps condition keys to a string or a []string.
	Context map[string]any `json:"context,omitempty"`
}

// Result is the oracle's answer to one Case: a Decision (Allowed, ExplicitDeny, ImplicitDeny) or an
// Error saying why the case could not be evaluated.
type Result struct {
	ID       string `json:"id"`
	Decision string `json:"decision,omitempty"`
	Error    string `json:"error,omitempty"`
	// IgnoredContextKeys are the request's context keys that iam-simulate dropped before evaluation
	// because they do not apply to the action or resource type.
	IgnoredContextKeys []string `json:"ignoredContextKeys,omitempty"`
	// ResultType is iam-simulate's result type: "single", or "wildcard" when a wildcard resource of
	// an action with resource types was expanded into several simulations.
	ResultType string `json:"resultType,omitempty"`
}

// Path returns the oracle script named by EC2GUARD_ORACLE. When it is unset the test is skipped
// with a hint to run `make test-env`, unless EC2GUARD_INTEGRATION=1, where it fails instead.
func Path(t testing.TB) string {
	t.Helper()
	p := testenv.Require(t, EnvVar)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (run `make test-env` again)", EnvVar, p, err)
	}
	return p
}

// Run evaluates cases with the oracle script named by EC2GUARD_ORACLE; see RunScript.
func Run(ctx context.Context, cases []Case) ([]Result, error) {
	script := os.Getenv(EnvVar)
	if script == "" {
		return nil, fmt.Errorf("%s is not set: run `make test-env` to install the IAM oracle", EnvVar)
	}
	return RunScript(ctx, script, cases)
}

// RunScript evaluates cases with one `node script` process for the whole batch, streaming the
// cases to its stdin while reading the results from its stdout. It returns one Result per case,
// in order. An error means the batch as a whole failed (the process could not run, died, or
// answered out of order); a case the oracle cannot evaluate gets a Result with Error set.
func RunScript(ctx context.Context, script string, cases []Case) ([]Result, error) {
	if len(cases) == 0 {
		return nil, nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("IAM oracle needs Node.js >= 20 on PATH: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("oracle stdin: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("oracle stdout: %w", err)
	}
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start oracle %s: %w", script, err)
	}

	writeErr := make(chan error, 1)
	go func() { writeErr <- writeCases(stdin, cases) }()

	results, readErr := readResults(stdout, cases)
	if readErr != nil {
		cancel() // stop the writer and the process; their errors are consequences
	}
	werr := <-writeErr
	waitErr := cmd.Wait()
	switch {
	case readErr != nil:
		return nil, fmt.Errorf("oracle %s: %w%s", script, readErr, stderr.suffix())
	case werr != nil:
		return nil, fmt.Errorf("oracle %s: writing cases: %w%s", script, werr, stderr.suffix())
	case waitErr != nil:
		return nil, fmt.Errorf("oracle %s: %w%s", script, waitErr, stderr.suffix())
	}
	return results, nil
}

func writeCases(w io.WriteCloser, cases []Case) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw) // Encode appends the newline that ends each JSON line
	for i := range cases {
		if err := enc.Encode(&cases[i]); err != nil {
			_ = w.Close()
			return fmt.Errorf("case %d (id %q): %w", i, cases[i].ID, err)
		}
	}
	if err := bw.Flush(); err != nil {
		_ = w.Close()
		return err
	}
	return w.Close()
}

func readResults(r io.Reader, cases []Case) ([]Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	results := make([]Result, 0, len(cases))
	for sc.Scan() {
		i := len(results)
		if i >= len(cases) {
			return nil, fmt.Errorf("more output lines than the %d cases sent: %q", len(cases), truncate(sc.Text()))
		}
		var res Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("output line %d: %w: %q", i+1, err, truncate(sc.Text()))
		}
		if res.ID != cases[i].ID {
			return nil, fmt.Errorf("output line %d has id %q, want %q (case %d)", i+1, res.ID, cases[i].ID, i)
		}
		if (res.Decision == "") == (res.Error == "") {
			return nil, fmt.Errorf("output line %d (id %q): want exactly one of decision and error: %q", i+1, res.ID, truncate(sc.Text()))
		}
		results = append(results, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading output: %w", err)
	}
	if len(results) != len(cases) {
		return nil, fmt.Errorf("got %d output lines for %d cases", len(results), len(cases))
	}
	return results, nil
}

func truncate(s string) string {
	const max = 300
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// tailBuffer keeps the last max bytes written to it (the oracle's stderr, for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) suffix() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}
