package iamdiff

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// BenchmarkSimulateGenerated evaluates the generated cases in-process, one at a time and without
// the decision cache, split into stages: parse+compile the policy set, evaluate a compiled set,
// and the whole case as `simulate --batch` does it (parse, compile, evaluate, explain, encode).
func BenchmarkSimulateGenerated(b *testing.B) {
	ctx := context.Background()
	engine, err := policycheck.NewEngine(ctx, policycheck.WithDecisionCache(0))
	if err != nil {
		b.Fatal(err)
	}
	gen := Generate(diffSeed, 1000)
	cases := make([]policycheck.SimulationCase, len(gen))
	sets := make([]*policycheck.PolicySet, len(gen))
	for i, c := range gen {
		cases[i] = toSimulationCase(b, c)
		if sets[i], err = cases[i].PolicySet(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("compile", func(b *testing.B) {
		defer reportCPU(b)()
		for i := 0; b.Loop(); i++ {
			if _, err := cases[i%len(cases)].PolicySet(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("evaluate", func(b *testing.B) {
		defer reportCPU(b)()
		for i := 0; b.Loop(); i++ {
			c := cases[i%len(cases)]
			if _, err := engine.Evaluate(ctx, sets[i%len(cases)], c.Request); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, v := range []struct {
		name string
		e    *policycheck.Engine
	}{{"case", engine}} {
		b.Run(v.name, func(b *testing.B) {
			defer reportCPU(b)()
			for i := 0; b.Loop(); i++ {
				r := v.e.Simulate(ctx, cases[i%len(cases)])
				if r.Error != "" {
					b.Fatal(r.Error)
				}
				if _, err := json.Marshal(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// reportCPU adds a cpu-ns/op metric (process CPU time, which other processes' load on the shared
// machine barely affects); defer the returned func.
func reportCPU(b *testing.B) func() {
	b.Helper()
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
