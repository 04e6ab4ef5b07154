// Package deadline holds the one helper that bounds an AWS call whose caller set no deadline.
package deadline

import (
	"context"
	"time"
)

// Default gives ctx the deadline d from now when it has none; a deadline ctx already has is kept
// (shorter or longer). The returned cancel must be called.
func Default(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
