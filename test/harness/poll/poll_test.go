package poll

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	calls := 0
	last, err := Wait(context.Background(), time.Minute, func() (bool, string) {
		calls++
		return calls == 3, "call " + strconv.Itoa(calls)
	})
	if err != nil || calls != 3 || last != "call 3" {
		t.Errorf("Wait = %q, %v after %d calls; want nil after the third", last, err, calls)
	}

	last, err = Wait(context.Background(), 3*Interval, func() (bool, string) { return false, "still missing" })
	if err == nil || last != "still missing" {
		t.Errorf("Wait on a condition that never holds = %q, %v; want an error and the last detail", last, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Wait(ctx, time.Minute, func() (bool, string) { return false, "" }); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with an ended context = %v, want context.Canceled", err)
	}
}
