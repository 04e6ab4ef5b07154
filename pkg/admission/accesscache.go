package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Defaults of AccessCacheOptions. The API server caches its webhook authorizer's answers 5m
// (allowed) and 30s (denied); these answers gate the use of credentials, so a revoked grant should
// stop working sooner: 1m. Most of the gain is within a burst anyway — the mutating and the
// validating call of one request, and a `kubectl apply` of many Upstreams. A denial is kept 10s,
// so that a user who was just granted access waits little.
const (
	DefaultAccessAllowedTTL = time.Minute
	DefaultAccessDeniedTTL  = 10 * time.Second
	DefaultAccessMaxEntries = 4096

	// accessReviewTimeout bounds one SubjectAccessReview shared by concurrent requests.
	accessReviewTimeout = 5 * time.Second
)

// AccessCacheOptions configures CachedAccessReviewer. A negative TTL disables caching of those
// answers; zero takes the default.
type AccessCacheOptions struct {
	AllowedTTL time.Duration
	DeniedTTL  time.Duration
	MaxEntries int
}

// CachedAccessReviewer caches another AccessReviewer's answers per question — user name, UID,
// groups (as a set), extra, and the Secret — like the API server caches webhook authorizer
// answers: allowed ones for AllowedTTL, denied ones for DeniedTTL, errors never. Concurrent
// identical questions share one review. The cache is an LRU of MaxEntries.
type CachedAccessReviewer struct {
	next    AccessReviewer
	opts    AccessCacheOptions
	metrics *Metrics
	now     func() time.Time

	mu      sync.Mutex
	entries *lru.Cache[string, accessAnswer]
	flights singleflight.Group
}

type accessAnswer struct {
	allowed bool
	reason  string
	expires time.Time
}

var _ AccessReviewer = (*CachedAccessReviewer)(nil)

// NewCachedAccessReviewer wraps next.
func NewCachedAccessReviewer(next AccessReviewer, opts AccessCacheOptions, m *Metrics) (*CachedAccessReviewer, error) {
	if opts.AllowedTTL == 0 {
		opts.AllowedTTL = DefaultAccessAllowedTTL
	}
	if opts.DeniedTTL == 0 {
		opts.DeniedTTL = DefaultAccessDeniedTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultAccessMaxEntries
	}
	entries, err := lru.New[string, accessAnswer](opts.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("access review cache of %d entries: %w", opts.MaxEntries, err)
	}
	return &CachedAccessReviewer{next: next, opts: opts, metrics: m, now: time.Now, entries: entries}, nil
}

// CanGetSecret implements AccessReviewer.
func (c *CachedAccessReviewer) CanGetSecret(ctx context.Context, user authenticationv1.UserInfo, nn types.NamespacedName) (bool, string, error) {
	key, err := accessKey(user, nn)
	if err != nil {
		return false, "", err
	}
	c.mu.Lock()
	if a, ok := c.entries.Get(key); ok {
		if c.now().Before(a.expires) {
			c.mu.Unlock()
			c.metrics.AccessCacheLookup(CacheHit)
			return a.allowed, a.reason, nil
		}
		c.entries.Remove(key)
	}
	c.mu.Unlock()
	c.metrics.AccessCacheLookup(CacheMiss)

	// The review is shared: it must not end with the request that started it, and no request
	// waits for it past its own context.
	ch := c.flights.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), accessReviewTimeout)
		defer cancel()
		allowed, reason, err := c.next.CanGetSecret(rctx, user, nn)
		if err != nil {
			c.metrics.AccessReview(AccessReviewError)
			return nil, err
		}
		if allowed {
			c.metrics.AccessReview(AccessReviewAllowed)
		} else {
			c.metrics.AccessReview(AccessReviewDenied)
		}
		a := accessAnswer{allowed: allowed, reason: reason}
		ttl := c.opts.DeniedTTL
		if allowed {
			ttl = c.opts.AllowedTTL
		}
		if ttl > 0 {
			a.expires = c.now().Add(ttl)
			c.mu.Lock()
			c.entries.Add(key, a)
			c.mu.Unlock()
		}
		return a, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return false, "", r.Err
		}
		a := r.Val.(accessAnswer)
		return a.allowed, a.reason, nil
	case <-ctx.Done():
		return false, "", fmt.Errorf("SubjectAccessReview of get secret %s for user %q: %w", nn, user.Username, ctx.Err())
	}
}

// accessKey identifies one question. It is a hash, so the cache holds no user names or groups.
func accessKey(user authenticationv1.UserInfo, nn types.NamespacedName) (string, error) {
	groups := slices.Clone(user.Groups)
	slices.Sort(groups)
	extra := make(map[string][]string, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = []string(v) // encoding/json sorts map keys
	}
	b, err := json.Marshal(struct {
		User, UID, Namespace, Name string
		Groups                     []string
		Extra                      map[string][]string
	}{user.Username, user.UID, nn.Namespace, nn.Name, groups, extra})
	if err != nil {
		return "", fmt.Errorf("access review cache key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
