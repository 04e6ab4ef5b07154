package admission

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"
)

type fakeSyncer struct{ synced bool }

func (f fakeSyncer) WaitForCacheSync(ctx context.Context) bool {
	if f.synced {
		return true
	}
	<-ctx.Done()
	return false
}

func TestCacheSyncedChecker(t *testing.T) {
	req := httptest.NewRequest("GET", "/readyz", nil)
	if err := CacheSyncedChecker(fakeSyncer{synced: true}, time.Second)(req); err != nil {
		t.Errorf("synced cache not ready: %v", err)
	}
	if err := CacheSyncedChecker(fakeSyncer{}, time.Millisecond)(req); err == nil {
		t.Error("unsynced cache ready")
	}
}
