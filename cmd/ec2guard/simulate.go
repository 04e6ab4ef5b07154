package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

const simulateLong = `Evaluates one IAM request (or a batch of them) with ec2guard's IAM engine, the one the webhook
uses: identity policies, a permissions boundary, SCPs and RCPs (each --scp/--rcp FILE is one
organization level, root first, with that one policy), a resource policy and a session policy.
--context may repeat a key to give it several values. --batch reads simulation cases (one JSON object
per line, docs/iam-semantics.md) and writes one result line per case, in order.

Exit codes: 0 allowed (batch: every case evaluated), 1 denied (the output says which statement, or
that none allows it), 2 usage or input error (batch: some case could not be evaluated).`

const simulateExample = `  # Allowed in the region the policy pins (exit 0)
  ec2guard simulate --policy examples/fixed-policy.json --action ec2:DescribeInstances --resource '*' \
      --context aws:RequestedRegion=us-east-1

  # Denied in another region (exit 1): REGION_MISMATCH names the statement and the fix
  ec2guard simulate --policy examples/fixed-policy.json --action ec2:DescribeInstances \
      --context aws:RequestedRegion=eu-west-1

  # A batch of cases, one JSON result line per case
  ec2guard simulate --batch cases.jsonl`

type simulateOpts struct {
	policies, scps, rcps, contexts []string
	boundary, resourcePolicy       string
	sessionPolicy, authDetails     string
	principal, action, resource    string
	account, output, batch         string
	parallel                       int
}

func (a *app) simulateCommand() *cobra.Command {
	var o simulateOpts
	cmd := &cobra.Command{
		Use:     "simulate (--policy FILE... --action A [--resource R] [--context key=value...] | --batch FILE.jsonl)",
		Short:   "Evaluate an IAM request with ec2guard's IAM engine",
		Long:    simulateLong,
		Example: simulateExample,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unexpected argument %q", args[0])
			}
			if code := runSimulate(o, a.stdin, a.stdout, a.stderr); code != exitOK {
				return exitWith(code)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&o.policies, "policy", nil, "identity policy file (repeatable)")
	fs.StringArrayVar(&o.scps, "scp", nil, "SCP file, one per organization level, root first (repeatable)")
	fs.StringArrayVar(&o.rcps, "rcp", nil, "RCP file, one per organization level, root first (repeatable)")
	fs.StringArrayVar(&o.contexts, "context", nil, "request context key=value (repeatable)")
	fs.StringVar(&o.boundary, "boundary", "", "permissions boundary file")
	fs.StringVar(&o.resourcePolicy, "resource-policy", "", "resource-based policy file")
	fs.StringVar(&o.sessionPolicy, "session-policy", "", "session policy file")
	fs.StringVar(&o.authDetails, "authorization-details", "", "output of aws iam get-account-authorization-details")
	fs.StringVar(&o.principal, "principal", "", "principal ARN")
	fs.StringVar(&o.action, "action", "", "action, e.g. ec2:DescribeInstances")
	fs.StringVar(&o.resource, "resource", "*", "resource ARN or *")
	fs.StringVar(&o.account, "resource-account", "", "account owning the resource (default: same account)")
	addOutputFlag(cmd, &o.output, "text", "json")
	fs.StringVar(&o.batch, "batch", "", "JSON Lines file of simulation cases (- for stdin)")
	fs.IntVar(&o.parallel, "parallel", runtime.GOMAXPROCS(0), "batch: cases evaluated at once")
	return cmd
}

// runSimulate runs one request or a batch and returns the exit code.
func runSimulate(o simulateOpts, stdin io.Reader, stdout, stderr io.Writer) int {
	if o.output != "text" && o.output != "json" {
		fmt.Fprintf(stderr, "ec2guard simulate: -o must be text or json, got %q\n", o.output)
		return 2
	}
	ctx := context.Background()
	if o.batch != "" {
		if len(o.policies) > 0 || o.action != "" || o.authDetails != "" {
			fmt.Fprintf(stderr, "ec2guard simulate: --batch takes its policies and requests from the file; drop --policy/--action/--authorization-details\n")
			return 2
		}
		// Batch cases are distinct, so a decision cache only costs; and a batch is short-lived
		// garbage-heavy work where fewer GC cycles save about a fifth of the CPU time.
		engine, err := policycheck.NewEngine(ctx, policycheck.WithDecisionCache(0))
		if err != nil {
			fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
			return 2
		}
		defer debug.SetGCPercent(debug.SetGCPercent(400))
		return runBatch(ctx, engine, o, stdin, stdout, stderr)
	}
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
		return 2
	}
	return runSingle(ctx, engine, o, stdout, stderr)
}

func readPolicy(path string) (policycheck.NamedPolicy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return policycheck.NamedPolicy{}, fmt.Errorf("reading policy: %w", err)
	}
	p, err := policycheck.ParsePolicy(filepath.Base(path), b)
	if err != nil {
		return policycheck.NamedPolicy{}, err
	}
	return policycheck.NamedPolicy{Name: filepath.Base(path), Policy: p}, nil
}

func optionalPolicy(path string) (*policycheck.NamedPolicy, error) {
	if path == "" {
		return nil, nil
	}
	np, err := readPolicy(path)
	if err != nil {
		return nil, err
	}
	return &np, nil
}

func (o simulateOpts) policySetInput() (policycheck.PolicySetInput, error) {
	var in policycheck.PolicySetInput
	if o.authDetails != "" {
		if o.principal == "" {
			return in, errors.New("--authorization-details needs --principal")
		}
		b, err := os.ReadFile(o.authDetails)
		if err != nil {
			return in, fmt.Errorf("reading authorization details: %w", err)
		}
		snap, err := policycheck.ParseAuthorizationDetails(b)
		if err != nil {
			return in, fmt.Errorf("%s: %w", o.authDetails, err)
		}
		pp, err := snap.PoliciesFor(o.principal)
		if err != nil {
			return in, err
		}
		in.Identity = pp.Identity
		in.Boundary = pp.Boundary
	}
	for _, f := range o.policies {
		np, err := readPolicy(f)
		if err != nil {
			return in, err
		}
		in.Identity = append(in.Identity, np)
	}
	var err error
	if o.boundary != "" {
		if in.Boundary, err = optionalPolicy(o.boundary); err != nil {
			return in, err
		}
	}
	if in.Resource, err = optionalPolicy(o.resourcePolicy); err != nil {
		return in, err
	}
	if in.Session, err = optionalPolicy(o.sessionPolicy); err != nil {
		return in, err
	}
	for _, f := range o.scps {
		np, err := readPolicy(f)
		if err != nil {
			return in, err
		}
		in.SCPs = append(in.SCPs, []policycheck.NamedPolicy{np})
	}
	for _, f := range o.rcps {
		np, err := readPolicy(f)
		if err != nil {
			return in, err
		}
		in.RCPs = append(in.RCPs, []policycheck.NamedPolicy{np})
	}
	return in, nil
}

func parseContext(list []string) (map[string]any, error) {
	ctx := map[string]any{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--context %q: want key=value", kv)
		}
		switch prev := ctx[k].(type) {
		case nil:
			ctx[k] = v
		case string:
			ctx[k] = []any{prev, v}
		case []any:
			ctx[k] = append(prev, v)
		}
	}
	return ctx, nil
}

func runSingle(ctx context.Context, engine *policycheck.Engine, o simulateOpts, stdout, stderr io.Writer) int {
	if o.action == "" {
		fmt.Fprintf(stderr, "ec2guard simulate: --action is required (see ec2guard simulate --help)\n")
		return 2
	}
	if len(o.policies) == 0 && o.authDetails == "" && o.resourcePolicy == "" {
		fmt.Fprintf(stderr, "ec2guard simulate: give at least one --policy (or --authorization-details, --resource-policy); see ec2guard simulate --help\n")
		return 2
	}
	in, err := o.policySetInput()
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
		return 2
	}
	ps, err := policycheck.NewPolicySet(in)
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
		return 2
	}
	cctx, err := parseContext(o.contexts)
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
		return 2
	}
	principal := o.principal
	if principal == "" {
		principal = policycheck.OfflinePrincipal
	}
	d, err := engine.Evaluate(ctx, ps, policycheck.Request{
		Principal: principal, Action: o.action, Resource: o.resource, ResourceAccount: o.account, Context: cctx,
	})
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
		return 2
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
			return 2
		}
	} else {
		writeDecisionText(stdout, d)
	}
	if d.IsAllowed() {
		return 0
	}
	return 1
}

func writeDecisionText(w io.Writer, d policycheck.Decision) {
	fmt.Fprintf(w, "%s: %s on %q\n", d.Result, d.Action, d.Resource)
	for _, n := range d.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(d.MatchedStatements) > 0 {
		fmt.Fprintln(w, "matched statements:")
		for _, r := range d.MatchedStatements {
			fmt.Fprintf(w, "  %s %s\n", r.Effect, r)
		}
	}
	for _, f := range d.Findings {
		fmt.Fprintf(w, "%s: %s\n  fix: %s\n", f.Code, f.Message, f.Fix)
	}
	if len(d.IgnoredContextKeys) > 0 {
		fmt.Fprintf(w, "ignored context keys (not available for %s): %s\n", d.Action, strings.Join(d.IgnoredContextKeys, ", "))
	}
}

// batchJob is one line of the batch in flight; done receives its output line.
type batchJob struct {
	line []byte
	n    int
	done chan batchOut
}

type batchOut struct {
	line   []byte
	failed bool
}

// runBatch streams cases through a worker pool and writes results in input order.
func runBatch(ctx context.Context, engine *policycheck.Engine, o simulateOpts, stdin io.Reader, stdout, stderr io.Writer) int {
	in := stdin
	if o.batch != "-" {
		f, err := os.Open(o.batch)
		if err != nil {
			fmt.Fprintf(stderr, "ec2guard simulate: %v\n", err)
			return 2
		}
		defer f.Close()
		in = f
	}
	workers := max(o.parallel, 1)
	jobs := make(chan *batchJob, workers*4)
	ordered := make(chan *batchJob, workers*16)
	for range workers {
		go func() {
			for j := range jobs {
				j.done <- evaluateLine(ctx, engine, j)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(jobs)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		n := 0
		for sc.Scan() {
			n++
			line := []byte(strings.TrimSpace(sc.Text()))
			if len(line) == 0 {
				continue
			}
			j := &batchJob{line: line, n: n, done: make(chan batchOut, 1)}
			ordered <- j
			jobs <- j
		}
		readErr <- sc.Err()
	}()
	out := bufio.NewWriter(stdout)
	failed := 0
	for j := range ordered {
		res := <-j.done
		if res.failed {
			failed++
		}
		out.Write(res.line)
		out.WriteByte('\n')
		if len(ordered) == 0 {
			out.Flush()
		}
	}
	if err := out.Flush(); err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: writing results: %v\n", err)
		return 2
	}
	if err := <-readErr; err != nil {
		fmt.Fprintf(stderr, "ec2guard simulate: reading %s: %v\n", o.batch, err)
		return 2
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "ec2guard simulate: %d case(s) could not be evaluated (see their \"error\" lines)\n", failed)
		return 2
	}
	return 0
}

func evaluateLine(ctx context.Context, engine *policycheck.Engine, j *batchJob) batchOut {
	var res policycheck.SimulationResult
	c, err := policycheck.ParseSimulationCase(j.line)
	if err != nil {
		res = policycheck.SimulationResult{ID: c.ID, Error: fmt.Sprintf("line %d: %v", j.n, err)}
	} else {
		res = engine.Simulate(ctx, c)
	}
	b, err := json.Marshal(res)
	if err != nil {
		res = policycheck.SimulationResult{ID: res.ID, Error: "encoding the result: " + err.Error()}
		b, _ = json.Marshal(res)
	}
	return batchOut{line: b, failed: res.Error != ""}
}
