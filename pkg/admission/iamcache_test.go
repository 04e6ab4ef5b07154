package admission

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

func testKey(rv string) awsclients.Key {
	return awsclients.Key{SecretUID: "uid-1", SecretVersion: rv, Region: "us-east-1"}
}

func TestIAMCacheHitMissAndTTL(t *testing.T) {
	m, reg := testMetrics(t)
	c, err := newIAMCache(8, time.Minute, time.Second, m)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	var computed atomic.Int32
	compute := func(context.Context) *IAMResult {
		computed.Add(1)
		return &IAMResult{Decision: DecisionAllowed, Source: SourceLocal}
	}
	get := func() *IAMResult {
		return c.get(context.Background(), testKey("1"), time.Minute, compute, verdict.Unknown)
	}

	if r := get(); r.Decision != DecisionAllowed {
		t.Fatalf("first get: %+v", r)
	}
	get()
	if n := computed.Load(); n != 1 {
		t.Fatalf("computed %d times before the TTL, want 1", n)
	}
	now = now.Add(2 * time.Minute)
	get()
	if n := computed.Load(); n != 2 {
		t.Fatalf("computed %d times after the TTL, want 2", n)
	}
	if hits, misses := counterValue(t, reg, MetricIAMCache, map[string]string{"result": CacheHit}),
		counterValue(t, reg, MetricIAMCache, map[string]string{"result": CacheMiss}); hits != 1 || misses != 2 {
		t.Errorf("hits %v misses %v, want 1 and 2", hits, misses)
	}
}

func TestIAMCacheKeepsUnknownOnlyForUnknownTTL(t *testing.T) {
	c, err := newIAMCache(8, time.Hour, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	var computed atomic.Int32
	compute := func(context.Context) *IAMResult { computed.Add(1); return verdict.Unknown("moto is down") }
	c.get(context.Background(), testKey("1"), time.Minute, compute, verdict.Unknown)
	c.get(context.Background(), testKey("1"), time.Minute, compute, verdict.Unknown)
	now = now.Add(2 * time.Second)
	c.get(context.Background(), testKey("1"), time.Minute, compute, verdict.Unknown)
	if n := computed.Load(); n != 2 {
		t.Errorf("computed %d times, want 2 (reused within the unknown TTL only)", n)
	}
}

// Concurrent callers share one computation.
func TestIAMCacheSharesOneFlight(t *testing.T) {
	m, reg := testMetrics(t)
	c, err := newIAMCache(8, time.Minute, time.Second, m)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	var computed atomic.Int32
	compute := func(context.Context) *IAMResult {
		if computed.Add(1) == 1 {
			close(started)
		}
		<-release
		return &IAMResult{Decision: DecisionAllowed, Source: SourceLocal}
	}
	var wg sync.WaitGroup
	results := make([]*IAMResult, 5)
	wg.Go(func() { results[0] = c.get(context.Background(), testKey("1"), time.Hour, compute, verdict.Unknown) })
	<-started
	for i := 1; i < 5; i++ {
		wg.Go(func() { results[i] = c.get(context.Background(), testKey("1"), time.Hour, compute, verdict.Unknown) })
	}
	// Wait until every joiner is registered as shared before releasing the computation.
	for counterValue(t, reg, MetricIAMCache, map[string]string{"result": CacheShared}) < 4 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Fatalf("computed %d times, want 1", n)
	}
	for i, r := range results {
		if r != results[0] || r.Decision != DecisionAllowed {
			t.Errorf("caller %d got %+v, want the shared result", i, r)
		}
	}
}

// Past the deadline the caller gets unknown, and a caller that joins later gets unknown by the same
// deadline instead of waiting a deadline of its own; the computation's context ends at the deadline.
func TestIAMCacheDeadline(t *testing.T) {
	c, err := newIAMCache(8, time.Minute, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctxEnded := make(chan error, 1)
	compute := func(ctx context.Context) *IAMResult {
		<-ctx.Done()
		ctxEnded <- ctx.Err()
		return verdict.Unknown("AWS did not answer: " + ctx.Err().Error())
	}
	deadline := 50 * time.Millisecond
	first := c.get(context.Background(), testKey("1"), deadline, compute, verdict.Unknown)
	if first.Known() {
		t.Fatalf("first caller got %+v, want unknown", first)
	}
	if err := <-ctxEnded; err != context.DeadlineExceeded {
		t.Errorf("the computation's context ended with %v, want the deadline", err)
	}
	second := c.get(context.Background(), testKey("1"), deadline, compute, verdict.Unknown)
	if second.Known() {
		t.Errorf("second caller got %+v, want the cached unknown", second)
	}
}

// A caller whose own request ends gets unknown; the flight goes on for the others.
func TestIAMCacheCallerCancellation(t *testing.T) {
	c, err := newIAMCache(8, time.Minute, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	compute := func(ctx context.Context) *IAMResult {
		<-release
		return &IAMResult{Decision: DecisionAllowed, Source: SourceLocal, Principal: testUser}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := c.get(ctx, testKey("1"), time.Hour, compute, verdict.Unknown)
	if r.Known() || !strings.Contains(r.Unknown, "request ended") {
		t.Fatalf("canceled caller got %+v, want unknown saying the request ended", r)
	}
	close(release)
	r = c.get(context.Background(), testKey("1"), time.Hour, compute, verdict.Unknown)
	if r.Decision != DecisionAllowed {
		t.Errorf("next caller got %+v, want the flight's result", r)
	}
}
