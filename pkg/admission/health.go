package admission

import (
	"context"
	"errors"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// CacheSyncer is the part of a controller-runtime cache the readiness check needs.
type CacheSyncer interface {
	WaitForCacheSync(ctx context.Context) bool
}

// CacheSyncedChecker is a readiness check that passes once the informer cache (the Secrets) has
// started and synced; each probe waits at most timeout.
func CacheSyncedChecker(c CacheSyncer, timeout time.Duration) healthz.Checker {
	return func(r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("the Secret cache has not synced yet")
		}
		return nil
	}
}
