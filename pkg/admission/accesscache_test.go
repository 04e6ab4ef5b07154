package admission

import (
	"context"
	"errors"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestAccessCacheKeysOnEveryPartOfTheQuestion(t *testing.T) {
	next := &fakeAccess{allowed: map[string]bool{"bob": true}}
	m, reg := testMetrics(t)
	c, err := NewCachedAccessReviewer(next, AccessCacheOptions{}, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	secret := types.NamespacedName{Namespace: "default", Name: "gloo-tag-group1"}
	bob := authenticationv1.UserInfo{Username: "bob", UID: "1", Groups: []string{"a", "b"},
		Extra: map[string]authenticationv1.ExtraValue{"scopes": {"x"}}}
	ask := func(u authenticationv1.UserInfo, nn types.NamespacedName) bool {
		t.Helper()
		ok, _, err := c.CanGetSecret(ctx, u, nn)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !ask(bob, secret) || !ask(bob, secret) {
		t.Fatal("bob denied")
	}
	if len(next.asked) != 1 {
		t.Errorf("asked %d times for the same question, want 1", len(next.asked))
	}
	// Each of these is another question.
	otherGroups := bob
	otherGroups.Groups = []string{"a"}
	otherUID := bob
	otherUID.UID = "2"
	otherExtra := bob
	otherExtra.Extra = map[string]authenticationv1.ExtraValue{"scopes": {"y"}}
	ask(otherGroups, secret)
	ask(otherUID, secret)
	ask(otherExtra, secret)
	ask(bob, types.NamespacedName{Namespace: "default", Name: "other"})
	ask(bob, types.NamespacedName{Namespace: "other", Name: "gloo-tag-group1"})
	if len(next.asked) != 6 {
		t.Errorf("asked %d times, want 6 (each changed part is a new question)", len(next.asked))
	}
	// The order of groups does not matter.
	reordered := bob
	reordered.Groups = []string{"b", "a"}
	ask(reordered, secret)
	if len(next.asked) != 6 {
		t.Errorf("reordered groups asked again")
	}
	if hits := counterValue(t, reg, MetricAccessReviewCache, map[string]string{"result": CacheHit}); hits != 2 {
		t.Errorf("%v hits, want 2", hits)
	}
	if misses := counterValue(t, reg, MetricAccessReviewCache, map[string]string{"result": CacheMiss}); misses != 6 {
		t.Errorf("%v misses, want 6", misses)
	}
}

func TestAccessCacheTTLsAndErrors(t *testing.T) {
	next := &fakeAccess{allowed: map[string]bool{"bob": true}}
	c, err := NewCachedAccessReviewer(next, AccessCacheOptions{AllowedTTL: time.Minute, DeniedTTL: 10 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	secret := types.NamespacedName{Namespace: "default", Name: "s"}
	bob, alice := authenticationv1.UserInfo{Username: "bob"}, authenticationv1.UserInfo{Username: "alice"}
	for _, u := range []authenticationv1.UserInfo{bob, alice, bob, alice} {
		if _, _, err := c.CanGetSecret(ctx, u, secret); err != nil {
			t.Fatal(err)
		}
	}
	if len(next.asked) != 2 {
		t.Fatalf("asked %v", next.asked)
	}
	now = now.Add(11 * time.Second) // the denial expired, the grant not
	for _, u := range []authenticationv1.UserInfo{bob, alice} {
		if _, _, err := c.CanGetSecret(ctx, u, secret); err != nil {
			t.Fatal(err)
		}
	}
	if len(next.asked) != 3 || next.asked[2] != "alice default/s" {
		t.Errorf("after 11s asked %v, want alice again only", next.asked)
	}
	now = now.Add(time.Minute)
	if _, _, err := c.CanGetSecret(ctx, bob, secret); err != nil {
		t.Fatal(err)
	}
	if len(next.asked) != 4 {
		t.Errorf("the grant outlived its TTL: asked %v", next.asked)
	}
	// Errors are never cached.
	next.err = errors.New("down")
	for range 2 {
		if _, _, err := c.CanGetSecret(ctx, authenticationv1.UserInfo{Username: "carol"}, secret); err == nil {
			t.Fatal("no error")
		}
	}
	if len(next.asked) != 6 {
		t.Errorf("an error was cached: asked %v", next.asked)
	}
}

func TestAccessCacheDisabled(t *testing.T) {
	next := &fakeAccess{allowed: map[string]bool{"bob": true}}
	c, err := NewCachedAccessReviewer(next, AccessCacheOptions{AllowedTTL: -1, DeniedTTL: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := c.CanGetSecret(context.Background(), authenticationv1.UserInfo{Username: "bob"}, types.NamespacedName{Namespace: "a", Name: "b"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(next.asked) != 3 {
		t.Errorf("asked %d times with the cache off, want 3", len(next.asked))
	}
}
