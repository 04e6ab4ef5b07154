package discovery

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// benchFleet builds a deterministic fleet: n instances with Name (unique), app (300 values, 1%
// spelt "App"), env (3), team (40), a port tag on half and a canary key on 2%; and u Upstreams:
// 60% app+env, 20% team+env=prod, 10% app, 5% canary+app, 4% "App" (case variant), 1% no
// filters.
func benchFleet(n, u int) ([]ec2api.Instance, []*Target) {
	rng := rand.New(rand.NewPCG(1, 2))
	envs := []string{"prod", "staging", "dev"}
	insts := make([]ec2api.Instance, n)
	for i := range insts {
		tags := map[string]string{
			"Name": fmt.Sprintf("node-%06d", i),
			"env":  envs[rng.IntN(len(envs))],
			"team": fmt.Sprintf("team-%02d", rng.IntN(40)),
		}
		appKey := "app"
		if rng.IntN(100) == 0 {
			appKey = "App"
		}
		tags[appKey] = fmt.Sprintf("app-%03d", rng.IntN(300))
		if rng.IntN(2) == 0 {
			tags["port"] = "8080"
		}
		if rng.IntN(50) == 0 {
			tags["canary"] = ""
		}
		insts[i] = ec2api.Instance{
			ID: fmt.Sprintf("i-%017x", i), PrivateIPv4: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
			AvailabilityZone: "us-east-1a", State: "running", Tags: tags,
		}
	}
	targets := make([]*Target, u)
	for j := range targets {
		app := fmt.Sprintf("app-%03d", rng.IntN(300))
		var fs []ec2.Filter
		switch p := j % 100; {
		case p < 60:
			fs = []ec2.Filter{ec2.KVFilter("app", app), ec2.KVFilter("env", envs[rng.IntN(3)])}
		case p < 80:
			fs = []ec2.Filter{ec2.KVFilter("team", fmt.Sprintf("team-%02d", rng.IntN(40))), ec2.KVFilter("env", "prod")}
		case p < 90:
			fs = []ec2.Filter{ec2.KVFilter("app", app)}
		case p < 95:
			fs = []ec2.Filter{ec2.KeyFilter("canary"), ec2.KVFilter("app", app)}
		case p < 99:
			fs = []ec2.Filter{ec2.KVFilter("App", app)}
		}
		m, err := ec2.NewMatcher(fs)
		if err != nil {
			panic(err)
		}
		targets[j] = &Target{
			Upstream: &ec2.Upstream{Namespace: "bench", Name: fmt.Sprintf("u-%04d", j), Spec: ec2.Spec{Region: "us-east-1", Filters: fs}},
			Matcher:  m,
		}
	}
	return insts, targets
}

// matchIndexed is one refresh's in-memory matching with the index.
func matchIndexed(insts []ec2api.Instance, targets []*Target) ([]Selection, [][]int32) {
	ix := NewIndex(insts)
	sels := ix.SelectAll(targets)
	return sels, Overlaps(ix.Len(), sels)
}

// matchBaseline is the same with the index as it was before exact-key posting lists (every tag
// key indexed lowercased, every candidate verified with the Matcher).
func matchBaseline(insts []ec2api.Instance, targets []*Target) ([]Selection, [][]int32) {
	ix := newBaselineIndex(insts)
	sels := ix.SelectAll(targets)
	return sels, baselineOverlaps(ix.Len(), sels)
}

// matchNaive classifies every instance for every Upstream.
func matchNaive(insts []ec2api.Instance, targets []*Target) ([]Selection, [][]int32) {
	sels := make([]Selection, len(targets))
	for i, t := range targets {
		sels[i] = naiveSelect(insts, t.Matcher)
	}
	return sels, baselineOverlaps(len(insts), sels)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sameMatching reports the first Upstream whose selection or overlap differs, or -1.
func sameMatching(aSels, bSels []Selection, aOv, bOv [][]int32) int {
	for i := range aSels {
		if !slices.Equal(aSels[i].Exact, bSels[i].Exact) || !slices.Equal(aSels[i].LowercaseOnly, bSels[i].LowercaseOnly) ||
			!slices.Equal(aOv[i], bOv[i]) {
			return i
		}
	}
	return -1
}

// BenchmarkMatch measures one refresh's in-memory matching of 1,000 Upstreams over 100,000
// instances: the index (built inside the measured loop) against the previous index, same run.
// cpu-ns/op is the process's CPU time (all threads, GC included) per operation. The naive loop
// (every Matcher over every instance, ~50× slower) is BenchmarkNaiveLoop.
func BenchmarkMatch(b *testing.B) {
	insts, targets := benchFleet(100_000, 1_000)
	wantSels, wantOv := matchBaseline(insts, targets)
	gotSels, gotOv := matchIndexed(insts, targets)
	if i := sameMatching(gotSels, wantSels, gotOv, wantOv); i >= 0 {
		b.Fatalf("upstream %d: index and baseline index disagree", i)
	}
	matched, loOnly := 0, 0
	for i := range wantSels {
		matched += len(wantSels[i].Exact)
		loOnly += len(wantSels[i].LowercaseOnly)
	}
	b.Logf("%d instances, %d upstreams, %d matches in total, %d lowercase-only", len(insts), len(targets), matched, loOnly)
	for _, c := range []struct {
		name string
		fn   func([]ec2api.Instance, []*Target) ([]Selection, [][]int32)
	}{{"indexed", matchIndexed}, {"baseline", matchBaseline}} {
		b.Run(c.name, func(b *testing.B) { benchMatching(b, insts, targets, c.fn) })
	}
}

// BenchmarkNaiveLoop is the naive loop over the same fleet (seconds per op).
func BenchmarkNaiveLoop(b *testing.B) {
	insts, targets := benchFleet(100_000, 1_000)
	benchMatching(b, insts, targets, matchNaive)
}

func benchMatching(b *testing.B, insts []ec2api.Instance, targets []*Target, fn func([]ec2api.Instance, []*Target) ([]Selection, [][]int32)) {
	b.ReportAllocs()
	start := cpuTime()
	n := 0
	for b.Loop() {
		fn(insts, targets)
		n++
	}
	b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
}
