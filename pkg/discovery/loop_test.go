package discovery

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// stepper drives a loop under a fake clock: it receives every result and advances the clock
// once the loop waits on its timer.
type stepper struct {
	t       *testing.T
	clk     *clocktesting.FakeClock
	results chan Result[int]
}

func (s *stepper) next() Result[int] {
	s.t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(10 * time.Second):
		s.t.Fatal("no refresh result within 10s")
		return Result[int]{}
	}
}

// advance waits until the loop sleeps on its timer, then moves the clock by d.
func (s *stepper) advance(d time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.clk.HasWaiters() {
		if time.Now().After(deadline) {
			s.t.Fatal("loop never waited on its timer")
		}
		time.Sleep(time.Millisecond)
	}
	s.clk.Step(d)
}

func startLoop(t *testing.T, opts LoopOptions, refresh RefreshFunc[int]) (*Loop[int], *stepper) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	opts.Clock = clk
	s := &stepper{t: t, clk: clk, results: make(chan Result[int], 16)}
	l, err := NewLoop(opts, refresh, func(_ context.Context, r Result[int]) { s.results <- r })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l, s
}

func TestLoopKeepsLastGoodValueWhileFailing(t *testing.T) {
	errDown := errors.New("down")
	outcomes := []error{nil, errDown, errDown, nil}
	n := 0
	_, s := startLoop(t, LoopOptions{Interval: time.Minute, MaxBackoff: time.Hour, Rand: func() float64 { return 0.5 }},
		func(ctx context.Context) (int, error) {
			if _, ok := ctx.Deadline(); !ok {
				t.Error("refresh ran without a deadline")
			}
			n++
			return n * 10, outcomes[n-1]
		})

	r := s.next()
	if r.Err != nil || !r.HasValue || r.Value != 10 || r.Stale || r.Seq != 1 {
		t.Fatalf("first result = %+v, want value 10, fresh", r)
	}
	s.advance(time.Minute)
	r = s.next()
	if !errors.Is(r.Err, errDown) || !r.Stale || r.Value != 10 || r.Attempt != 20 || r.Failures != 1 || r.StaleSince != r.Started {
		t.Fatalf("second result = %+v, want stale value 10 with the error", r)
	}
	firstFailure := r.StaleSince
	s.advance(2 * time.Minute)
	r = s.next()
	if !r.Stale || r.Value != 10 || r.Failures != 2 || !r.StaleSince.Equal(firstFailure) {
		t.Fatalf("third result = %+v, want still stale since the first failure", r)
	}
	s.advance(4 * time.Minute)
	r = s.next()
	if r.Err != nil || r.Stale || r.Value != 40 || r.Failures != 0 || !r.StaleSince.IsZero() {
		t.Fatalf("fourth result = %+v, want fresh value 40", r)
	}
}

func TestLoopFirstFailureHasNoValueAndIsNotStale(t *testing.T) {
	_, s := startLoop(t, LoopOptions{Interval: time.Minute}, func(context.Context) (int, error) { return 7, errors.New("no") })
	r := s.next()
	if r.HasValue || r.Stale || r.Value != 0 || r.Attempt != 7 || r.Err == nil || r.StaleSince.IsZero() {
		t.Fatalf("result = %+v, want an error without a value, with the attempt's own return", r)
	}
}

func TestLoopTriggerRefreshesWithoutWaiting(t *testing.T) {
	n := 0
	l, s := startLoop(t, LoopOptions{Interval: time.Hour}, func(context.Context) (int, error) { n++; return n, nil })
	if r := s.next(); r.Triggered || r.Value != 1 {
		t.Fatalf("first result = %+v", r)
	}
	l.Trigger()
	r := s.next()
	if !r.Triggered || r.Value != 2 {
		t.Fatalf("triggered result = %+v, want value 2 and Triggered", r)
	}
	if got := l.Last(); got.Seq != 2 {
		t.Fatalf("Last().Seq = %d, want 2", got.Seq)
	}
}

func TestLoopStopsWhenContextEnds(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	l, err := NewLoop(LoopOptions{Interval: time.Hour, Clock: clk}, func(context.Context) (int, error) { return 1, nil },
		func(context.Context, Result[int]) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the context ended")
	}
}

func TestLoopLimiterBoundsConcurrency(t *testing.T) {
	limiter := make(chan struct{}, 1)
	limiter <- struct{}{} // the only slot is taken
	ran := make(chan struct{}, 1)
	l, err := NewLoop(LoopOptions{Interval: time.Hour, Limiter: limiter}, func(context.Context) (int, error) {
		ran <- struct{}{}
		return 1, nil
	}, func(context.Context, Result[int]) {})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	select {
	case <-ran:
		t.Fatal("refresh ran although the limiter had no free slot")
	default:
	}
	<-limiter // free the slot
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("refresh did not run after the slot was freed")
	}
}

func TestNextDelay(t *testing.T) {
	o := LoopOptions{Interval: 30 * time.Second, Jitter: 0.1, MaxBackoff: 5 * time.Minute}
	cases := []struct {
		failures int
		r        float64
		want     time.Duration
	}{
		{0, 0, 27 * time.Second},       // interval - 10%
		{0, 0.5, 30 * time.Second},     // interval
		{0, 1, 33 * time.Second},       // interval + 10%
		{1, 0, 30 * time.Second},       // 2·interval, lower half
		{1, 1, 60 * time.Second},       // 2·interval
		{2, 1, 120 * time.Second},      // 4·interval
		{3, 1, 240 * time.Second},      // 8·interval
		{4, 1, 5 * time.Minute},        // capped
		{4, 0, 150 * time.Second},      // capped, lower half
		{1000, 0.5, 225 * time.Second}, // no overflow
		{0, 0.25, 28500 * time.Millisecond},
	}
	for _, c := range cases {
		if got := nextDelay(o, c.failures, c.r); got != c.want {
			t.Errorf("nextDelay(failures=%d, r=%g) = %s, want %s", c.failures, c.r, got, c.want)
		}
	}
}

func TestNewLoopRejectsBadOptions(t *testing.T) {
	ok := func(context.Context) (int, error) { return 0, nil }
	upd := func(context.Context, Result[int]) {}
	for name, o := range map[string]LoopOptions{
		"negative interval":  {Interval: -time.Second},
		"jitter 1":           {Jitter: 1},
		"negative jitter":    {Jitter: -0.1},
		"backoff < interval": {Interval: time.Minute, MaxBackoff: time.Second},
	} {
		if _, err := NewLoop(o, ok, upd); err == nil {
			t.Errorf("%s: NewLoop accepted %+v", name, o)
		}
	}
	if _, err := NewLoop[int](LoopOptions{}, nil, upd); err == nil {
		t.Error("NewLoop accepted a nil refresh function")
	}
}
