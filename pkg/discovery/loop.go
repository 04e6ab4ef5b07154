package discovery

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// RefreshFunc fetches a new value, e.g. one credential group's listing of running instances.
type RefreshFunc[T any] func(ctx context.Context) (T, error)

// UpdateFunc receives the outcome of every refresh attempt, good or failed, under its own
// deadline. It runs in the loop's goroutine, so attempts and updates of one loop never overlap.
type UpdateFunc[T any] func(ctx context.Context, r Result[T])

// Defaults of LoopOptions.
const (
	DefaultInterval   = 30 * time.Second
	DefaultJitter     = 0.1
	DefaultTimeout    = 2 * time.Minute
	DefaultMaxBackoff = 5 * time.Minute
)

// LoopOptions configures a Loop. Zero values take the defaults above (Jitter excepted).
type LoopOptions struct {
	// Interval between the end of one attempt and the start of the next while attempts succeed.
	Interval time.Duration
	// Jitter spreads successful intervals uniformly over Interval·(1 ± Jitter) so that groups
	// started together drift apart; 0 <= Jitter < 1, 0 for none (DefaultJitter is a good value).
	Jitter float64
	// Timeout bounds one attempt (the refresh function); the update gets a fresh Timeout.
	Timeout time.Duration
	// MaxBackoff caps the delay after consecutive failures (default: DefaultMaxBackoff, or
	// Interval when that is longer). After n failures the delay is
	// Interval·2^n capped at MaxBackoff, with full jitter over its upper half.
	MaxBackoff time.Duration
	// Clock is the time source (tests use a fake one). Default: the real clock.
	Clock clock.WithTicker
	// Rand returns a number in [0, 1) for the jitter. Default: math/rand/v2.
	Rand func() float64
	// Limiter, when set, is a semaphore shared by loops: an attempt holds one slot, bounding how
	// many groups refresh at once.
	Limiter chan struct{}
}

func (o LoopOptions) withDefaults() (LoopOptions, error) {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.Interval)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	switch {
	case o.Interval < 0:
		return o, fmt.Errorf("refresh interval %s: must be positive", o.Interval)
	case o.Jitter < 0 || o.Jitter >= 1:
		return o, fmt.Errorf("refresh jitter %g: must be in [0, 1)", o.Jitter)
	case o.Timeout < 0:
		return o, fmt.Errorf("refresh timeout %s: must be positive", o.Timeout)
	case o.MaxBackoff < o.Interval:
		return o, fmt.Errorf("max backoff %s: must be at least the refresh interval %s", o.MaxBackoff, o.Interval)
	}
	return o, nil
}

// Result is the outcome of one refresh attempt together with the last good value.
type Result[T any] struct {
	// Value is the last good value: this attempt's when it succeeded, else an earlier one.
	Value T
	// Attempt is what this attempt's refresh function returned, also when it failed (a refresh
	// may return what the failed attempt did or cost beside its error).
	Attempt T
	// HasValue is false until an attempt has succeeded.
	HasValue bool
	// ValueAt is when Value was fetched (the start of its attempt).
	ValueAt time.Time
	// Err is this attempt's error; nil on success.
	Err error
	// Stale is true when this attempt failed and Value is from an earlier attempt.
	Stale bool
	// StaleSince is the start of the first attempt of the current run of failures (zero while
	// attempts succeed).
	StaleSince time.Time
	// Failures counts consecutive failed attempts, this one included.
	Failures int
	// Seq numbers the attempts of this loop from 1.
	Seq uint64
	// Triggered is true when the attempt was requested with Trigger rather than timed.
	Triggered bool
	// Started and Finished bracket the refresh function (not the update).
	Started, Finished time.Time
}

// Loop calls a refresh function periodically with jitter, a per-attempt deadline and
// exponential backoff with jitter after failures, and hands every outcome — keeping the last
// good value when an attempt fails — to an update function. It is the discoverer's generic
// per-credential-group loop, in the spirit of Prometheus' discovery/refresh.
type Loop[T any] struct {
	opts    LoopOptions
	refresh RefreshFunc[T]
	update  UpdateFunc[T]
	trigger chan struct{}

	mu   sync.Mutex
	last Result[T]
}

// NewLoop returns a loop; Run starts it.
func NewLoop[T any](opts LoopOptions, refresh RefreshFunc[T], update UpdateFunc[T]) (*Loop[T], error) {
	if refresh == nil || update == nil {
		return nil, errors.New("refresh loop: refresh and update functions are required")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("refresh loop: %w", err)
	}
	return &Loop[T]{opts: o, refresh: refresh, update: update, trigger: make(chan struct{}, 1)}, nil
}

// Trigger asks for an attempt now (or right after the current one). It never blocks; triggers
// that arrive while one is pending coalesce.
func (l *Loop[T]) Trigger() {
	select {
	case l.trigger <- struct{}{}:
	default:
	}
}

// Last returns the result of the latest finished attempt (zero before the first).
func (l *Loop[T]) Last() Result[T] {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Run makes the first attempt at once, then one after every delay, until ctx ends.
func (l *Loop[T]) Run(ctx context.Context) {
	triggered := false
	for {
		if !l.attempt(ctx, triggered) {
			return
		}
		t := l.opts.Clock.NewTimer(l.Delay(l.Last().Failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
			triggered = false
		case <-l.trigger:
			t.Stop()
			triggered = true
		}
	}
}

// attempt runs one refresh and its update. It returns false when ctx ended first.
func (l *Loop[T]) attempt(ctx context.Context, triggered bool) bool {
	if l.opts.Limiter != nil {
		select {
		case l.opts.Limiter <- struct{}{}:
			defer func() { <-l.opts.Limiter }()
		case <-ctx.Done():
			return false
		}
	}
	if ctx.Err() != nil {
		return false
	}
	started := l.opts.Clock.Now()
	actx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	v, err := l.refresh(actx)
	cancel()
	finished := l.opts.Clock.Now()
	if ctx.Err() != nil {
		return false // shutting down: an attempt cut short is no news
	}

	l.mu.Lock()
	prev := l.last
	r := Result[T]{
		Seq: prev.Seq + 1, Triggered: triggered, Started: started, Finished: finished, Err: err, Attempt: v,
	}
	if err == nil {
		r.Value, r.HasValue, r.ValueAt = v, true, started
	} else {
		r.Value, r.HasValue, r.ValueAt = prev.Value, prev.HasValue, prev.ValueAt
		r.Stale = prev.HasValue
		r.Failures = prev.Failures + 1
		r.StaleSince = prev.StaleSince
		if r.StaleSince.IsZero() {
			r.StaleSince = started
		}
	}
	l.last = r
	l.mu.Unlock()

	uctx, ucancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer ucancel()
	l.update(uctx, r)
	return true
}

// Delay is the wait before the next attempt after the given number of consecutive failures:
// Interval·(1 ± Jitter) while attempts succeed; after n failures min(Interval·2^n, MaxBackoff),
// jittered uniformly over its upper half so that failing groups do not retry in lockstep.
func (l *Loop[T]) Delay(failures int) time.Duration {
	return nextDelay(l.opts, failures, l.opts.Rand())
}

func nextDelay(o LoopOptions, failures int, r float64) time.Duration {
	if failures <= 0 {
		f := 1 + o.Jitter*(2*r-1)
		return time.Duration(float64(o.Interval) * f)
	}
	d := float64(backoff(o.Interval, o.MaxBackoff, failures))
	return time.Duration(d/2 + r*d/2)
}

// backoff is interval·2ⁿ capped at maxBackoff (without overflowing): the loop's delay after n
// failed attempts (before its jitter) and a member's delay after n failed publications.
func backoff(interval, maxBackoff time.Duration, n int) time.Duration {
	d := interval
	for i := 0; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}
