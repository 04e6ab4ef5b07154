package admission

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// iamCache holds IAM results per credentials identity (secret UID + resourceVersion, or the pod's
// identity), region and roleArn — awsclients.Key. Concurrent lookups of a missing key share one
// computation (a "flight"). A flight has a deadline fixed when it starts; the computation gets a
// context ending then, and no caller waits past it: a caller that joins late (the validating call
// after the mutating one) waits only for what is left, so one admission never spends more than
// one deadline on AWS. Decided results are kept for ttl, undecided ones for unknownTTL.
type iamCache struct {
	ttl        time.Duration
	unknownTTL time.Duration
	now        func() time.Time
	metrics    *Metrics
	log        logr.Logger // where a panicking computation is logged

	mu       sync.Mutex
	results  *lru.Cache[awsclients.Key, cachedResult]
	inflight map[awsclients.Key]*flight
}

type cachedResult struct {
	res     *IAMResult
	expires time.Time
}

type flight struct {
	done     chan struct{}
	res      *IAMResult // set before done is closed
	deadline time.Time
}

// computeFunc computes the IAM result; ctx ends at the flight's deadline.
type computeFunc func(ctx context.Context) *IAMResult

func newIAMCache(size int, ttl, unknownTTL time.Duration, m *Metrics) (*iamCache, error) {
	results, err := lru.New[awsclients.Key, cachedResult](size)
	if err != nil {
		return nil, fmt.Errorf("IAM result cache of %d entries: %w", size, err)
	}
	return &iamCache{
		ttl: ttl, unknownTTL: unknownTTL, now: time.Now, metrics: m, log: logr.Discard(),
		results: results, inflight: map[awsclients.Key]*flight{},
	}, nil
}

// get returns the result for key: cached, shared with a running flight, or computed by a new
// flight with the given deadline. It returns by the flight's deadline or when ctx ends, whichever
// is first; then the result is unknown (timedOut builds it).
func (c *iamCache) get(ctx context.Context, key awsclients.Key, deadline time.Duration, compute computeFunc, timedOut func(reason string) *IAMResult) *IAMResult {
	res, fl, lookup := c.lookup(ctx, key, deadline, compute)
	c.metrics.CacheLookup(lookup)
	if res != nil {
		return res
	}
	return wait(ctx, fl, deadline, timedOut)
}

// lookup returns a fresh cached result, or else the flight to wait for.
func (c *iamCache) lookup(ctx context.Context, key awsclients.Key, deadline time.Duration, compute computeFunc) (*IAMResult, *flight, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if r, ok := c.results.Get(key); ok {
		if now.Before(r.expires) {
			return r.res, nil, CacheHit
		}
		c.results.Remove(key)
	}
	if fl, ok := c.inflight[key]; ok {
		return nil, fl, CacheShared
	}
	// Deadlines use the real clock; c.now (replaceable in tests) only ages cached results.
	fl := &flight{done: make(chan struct{}), deadline: time.Now().Add(deadline)}
	c.inflight[key] = fl
	// The flight must not end with the request that started it: later requests share it.
	fctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), fl.deadline)
	go func() {
		defer cancel()
		c.finish(key, fl, c.computeRecovered(fctx, compute))
	}()
	return nil, fl, CacheMiss
}

// computeRecovered runs compute and turns a panic into an unknown result, so that a bug in one
// computation neither kills the process nor leaves the flight's waiters hanging.
func (c *iamCache) computeRecovered(ctx context.Context, compute computeFunc) (res *IAMResult) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error(fmt.Errorf("panic: %v", p), "IAM computation panicked", "stack", string(debug.Stack()))
			res = verdict.Unknown("internal error in the IAM evaluation (see the webhook's log)")
		}
	}()
	return compute(ctx)
}

func (c *iamCache) finish(key awsclients.Key, fl *flight, res *IAMResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.ttl
	if res == nil || res.Decision == DecisionUnknown {
		ttl = c.unknownTTL
	}
	if res != nil && ttl > 0 {
		c.results.Add(key, cachedResult{res: res, expires: c.now().Add(ttl)})
	}
	delete(c.inflight, key)
	fl.res = res
	close(fl.done)
}

// wait waits for fl until its deadline or the end of ctx.
func wait(ctx context.Context, fl *flight, deadline time.Duration, timedOut func(reason string) *IAMResult) *IAMResult {
	timer := time.NewTimer(time.Until(fl.deadline))
	defer timer.Stop()
	select {
	case <-fl.done:
		if fl.res == nil {
			return timedOut("the IAM evaluation returned no result")
		}
		return fl.res
	case <-timer.C:
		return timedOut(fmt.Sprintf("AWS did not answer within the IAM deadline of %s", deadline))
	case <-ctx.Done():
		return timedOut(fmt.Sprintf("the admission request ended before the IAM decision: %v", ctx.Err()))
	}
}
