package iamdiff

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	bin := filepath.Join(dir, "ec2guard")
	build := exec.Command("go", "build", "-o", bin, "github.com/ec2guard/ec2guard/cmd/ec2guard")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building ec2guard: %v\n%s", err, out)
	}
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
	var ourWall, ourCPU, theirWall, theirCPU time.Duration
	for b.Loop() {
		w, c := run("ec2guard", bin, "simulate", "--batch", "-")
		ourWall, ourCPU = ourWall+w, ourCPU+c
		w, c = run("oracle", "node", script)
		theirWall, theirCPU = theirWall+w, theirCPU+c
	}
	n := float64(b.N)
	b.ReportMetric(ourWall.Seconds()/n, "ec2guard-s")
	b.ReportMetric(theirWall.Seconds()/n, "oracle-s")
	b.ReportMetric(ourCPU.Seconds()/n, "ec2guard-cpu-s")
	b.ReportMetric(theirCPU.Seconds()/n, "oracle-cpu-s")
	b.ReportMetric(theirWall.Seconds()/ourWall.Seconds(), "throughput-x")
}
