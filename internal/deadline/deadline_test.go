package deadline

import (
	"context"
	"testing"
	"time"
)

func TestDefaultSetsADeadlineOnlyWhenMissing(t *testing.T) {
	ctx, cancel := Default(context.Background(), time.Hour)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Fatal("no deadline set on a context without one")
	}
	want := time.Now().Add(time.Minute)
	parent, pcancel := context.WithDeadline(context.Background(), want)
	defer pcancel()
	ctx, cancel = Default(parent, time.Hour)
	defer cancel()
	if got, _ := ctx.Deadline(); !got.Equal(want) {
		t.Fatalf("deadline %v, want the caller's %v", got, want)
	}
	if ctx != parent {
		t.Fatal("a context with a deadline was wrapped")
	}
}
