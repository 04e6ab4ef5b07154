package iamdiff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/oracle"
)

// batchCases is the size of the batch comparison (issue #4: the same 5,000 cases for both).
const batchCases = 5000

// BenchmarkBatchVsOracle runs `ec2guard simulate --batch` and the oracle script as whole processes
// over the same generated cases, once per iteration each, and reports both wall times, their user
// CPU times and the throughput ratio (ec2guard cases/s over oracle cases/s). Both run in the same
// benchmark, so the ratio is independent of how loaded the machine is at the time.
//
//	source <(hack/oracle.sh) && go test -run '^$' -bench BatchVsOracle -benchtime 3x ./test/iamdiff/
func BenchmarkBatchVsOracle(b *testing.B) {
	script := oracle.Path(b)
	dir := b.TempDir()
	bin := binproc.Build(b, "ec2guard")
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, c := range Generate(diffSeed, batchCases) {
		if err := enc.Encode(c); err != nil {
			b.Fatal(err)
		}
	}
	casesFile := filepath.Join(dir, "cases.jsonl")
	if err := os.WriteFile(casesFile, in.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	run := func(name string, args ...string) (wall, user time.Duration) {
		f, err := os.Open(casesFile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cmd := exec.CommandContext(context.Background(), args[0], args[1:]...)
		cmd.Stdin = f
		var out bytes.Buffer
		cmd.Stdout = &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		wall = time.Since(start)
		if n := strings.Count(out.String(), "\n"); n != batchCases {
			b.Fatalf("%s: %d result lines for %d cases", name, n, batchCases)
		}
		return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	lines := bytes.SplitAfter(bytes.TrimSpace(in.Bytes()), []byte("\n"))
	floor, err := newFloorPipeline()
	if err != nil {
		b.Fatal(err)
	}
	var ourWall, ourCPU, theirWall, theirCPU, floorWall time.Duration
	for b.Loop() {
		w, c := run("ec2guard", bin, "simulate", "--batch", "-")
		ourWall, ourCPU = ourWall+w, ourCPU+c
		w, c = run("oracle", "node", script)
		theirWall, theirCPU = theirWall+w, theirCPU+c
		w, err := floor.run(lines, runtime.GOMAXPROCS(0))
		if err != nil {
			b.Fatal(err)
		}
		floorWall += w
	}
	n := float64(b.N)
	b.ReportMetric(ourWall.Seconds()/n, "ec2guard-s")
	b.ReportMetric(theirWall.Seconds()/n, "oracle-s")
	b.ReportMetric(ourCPU.Seconds()/n, "ec2guard-cpu-s")
	b.ReportMetric(theirCPU.Seconds()/n, "oracle-cpu-s")
	b.ReportMetric(theirWall.Seconds()/ourWall.Seconds(), "throughput-x")
	// The floor: what share of the 10x budget (a tenth of the oracle's time) a pipeline with no IAM
	// logic at all already uses (see floorPipeline).
	b.ReportMetric(floorWall.Seconds()/n, "floor-s")
	b.ReportMetric(floorWall.Seconds()/(theirWall.Seconds()/10), "floor-share-of-10x")
}

// floorPipeline is the least any Rego-based `simulate --batch` must do per case, with no IAM logic:
// decode the case line (policies included) into generic values, convert them to an OPA input
// value, run a prepared query that reads nothing (`x := 1`), and encode a result line. It runs
// in-process on as many workers as ec2guard's batch uses, so its wall time is a lower bound for
// ec2guard's, measured in the same run as the oracle.
type floorPipeline struct{ pq rego.PreparedEvalQuery }

func newFloorPipeline() (*floorPipeline, error) {
	pq, err := rego.New(rego.Query("x := 1")).PrepareForEval(context.Background())
	if err != nil {
		return nil, fmt.Errorf("preparing the empty query: %w", err)
	}
	return &floorPipeline{pq: pq}, nil
}

func (f *floorPipeline) run(lines [][]byte, workers int) (time.Duration, error) {
	ctx := context.Background()
	start := time.Now()
	errs := make(chan error, workers)
	var next atomic.Int64
	for range workers {
		go func() {
			var out bytes.Buffer
			for {
				i := int(next.Add(1)) - 1
				if i >= len(lines) {
					errs <- nil
					return
				}
				dec := json.NewDecoder(bytes.NewReader(lines[i]))
				dec.UseNumber()
				var c map[string]any
				if err := dec.Decode(&c); err != nil {
					errs <- fmt.Errorf("case %d: %w", i, err)
					return
				}
				input, err := ast.InterfaceToValue(c)
				if err != nil {
					errs <- fmt.Errorf("case %d: %w", i, err)
					return
				}
				if _, err := f.pq.Eval(ctx, rego.EvalParsedInput(input)); err != nil {
					errs <- fmt.Errorf("case %d: %w", i, err)
					return
				}
				line, err := json.Marshal(map[string]any{"id": c["id"], "decision": "implicitDeny", "matchedStatements": []any{}, "findings": []any{}})
				if err != nil {
					errs <- err
					return
				}
				out.Write(line)
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}
