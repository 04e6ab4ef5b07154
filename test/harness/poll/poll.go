// Package poll waits in tests for a state they cannot wait on directly (an informer catching up,
// a webhook registration taking effect, a controller publishing), bounded in time.
package poll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Interval is how often Until checks.
const Interval = 200 * time.Millisecond

// Until calls cond at once and then every Interval until it reports true, and fails tb (FailNow)
// if it has not within timeout, naming what was awaited and cond's last detail. Call it from the
// goroutine running tb, with the tb of the (sub)test that waits.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() (ok bool, detail string)) {
	tb.Helper()
	if last, err := Wait(context.Background(), timeout, cond); err != nil {
		tb.Fatalf("waited %s for %s: %v; last: %s", timeout, what, err, last)
	}
}

// UntilNil is Until for a condition that says what is still missing as an error: it waits until
// cond returns nil.
func UntilNil(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	Until(tb, timeout, what, func() (bool, string) {
		err := cond()
		return err == nil, fmt.Sprint(err)
	})
}

// Wait is Until without a test: it returns cond's last detail and an error if cond did not hold
// within timeout or ctx ended.
func Wait(ctx context.Context, timeout time.Duration, cond func() (ok bool, detail string)) (last string, err error) {
	err = wait.PollUntilContextTimeout(ctx, Interval, timeout, true, func(context.Context) (bool, error) {
		ok, detail := cond()
		last = detail
		return ok, nil
	})
	return last, err
}
