// Package sharding splits work keys (the discoverer's credential groups) across replicas. Each
// replica is a member: it renews a Kubernetes Lease of its own, and every member reads the others'
// Leases. A key belongs to one live member, chosen by rendezvous hashing (the member with the
// highest hash of member+key), so a member that joins or leaves moves only the keys it gains or
// held.
//
// Two rules keep a key from being worked on by two members at once. A member drops a key as soon
// as it sees that the key belongs to another member, but takes a key it gains only once the
// membership it computed that from has held for HandoverDelay (longer than every member's renew
// interval, so the previous owner has seen the change and dropped it). And a member whose own Lease
// could not be renewed for LeaseDuration owns nothing (the others consider it gone).
package sharding

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// LabelGroup on a member Lease names the group of members it belongs to.
const LabelGroup = "ec2guard.io/shard-group"

// Defaults of Options.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewInterval = 5 * time.Second
)

// Options configure a Member.
type Options struct {
	// Group names the members that share keys (one per Deployment); Leases are named
	// <Group>-<Identity>.
	Group string
	// Identity names this member (the pod's name); unique within Group.
	Identity string
	// Namespace of the Leases.
	Namespace string
	// LeaseDuration is how long a Lease counts as live after its last renewal; RenewInterval how
	// often a member renews its own and reads the others'. HandoverDelay (default: RenewInterval
	// plus one second) is how long a membership must hold before a member takes the keys it gains
	// from it; it must exceed RenewInterval.
	LeaseDuration, RenewInterval, HandoverDelay time.Duration
	// OnChange is called (from the member's goroutine) when the keys this member owns may have
	// changed: the membership changed, a handover delay ended, or the member fenced itself.
	OnChange func()
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	Log logr.Logger
}

// Member is one replica's view of the membership. Owns is safe for concurrent use.
type Member struct {
	opts Options
	c    client.Client

	mu sync.Mutex
	// current is the latest membership read; stable is the membership that has held for
	// HandoverDelay (it lags current); since is when current was first read.
	current, stable []string
	since           time.Time
	// renewed is when this member's Lease was last renewed.
	renewed time.Time
	// fenced is the last fencing state OnChange was called for.
	fenced bool
}

// New returns a member; Start runs it.
func New(c client.Client, opts Options) (*Member, error) {
	if opts.Group == "" || opts.Identity == "" || opts.Namespace == "" {
		return nil, errors.New("sharding: group, identity and namespace are required")
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = DefaultLeaseDuration
	}
	if opts.RenewInterval == 0 {
		opts.RenewInterval = DefaultRenewInterval
	}
	if opts.HandoverDelay == 0 {
		opts.HandoverDelay = opts.RenewInterval + time.Second
	}
	switch {
	case opts.RenewInterval >= opts.LeaseDuration:
		return nil, fmt.Errorf("sharding: renew interval %s must be shorter than the lease duration %s", opts.RenewInterval, opts.LeaseDuration)
	case opts.HandoverDelay <= opts.RenewInterval:
		return nil, fmt.Errorf("sharding: handover delay %s must exceed the renew interval %s", opts.HandoverDelay, opts.RenewInterval)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnChange == nil {
		opts.OnChange = func() {}
	}
	return &Member{opts: opts, c: c}, nil
}

// LeaseName is the name of a member's Lease.
func LeaseName(group, identity string) string { return group + "-" + identity }

// Owns reports whether this member works on key now.
func (m *Member) Owns(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.renewed.IsZero() || m.opts.Now().Sub(m.renewed) >= m.opts.LeaseDuration {
		return false
	}
	me := m.opts.Identity
	return Owner(m.current, key) == me && Owner(m.stable, key) == me
}

// Members returns the latest membership read (sorted).
func (m *Member) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.current)
}

// Owner is the member of members that owns key by rendezvous hashing ("" when members is empty).
func Owner(members []string, key string) string {
	best, bestHash := "", uint64(0)
	for _, mb := range members {
		h := fnv.New64a()
		_, _ = h.Write([]byte(mb))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(key))
		if v := h.Sum64(); best == "" || v > bestHash || (v == bestHash && mb < best) {
			best, bestHash = mb, v
		}
	}
	return best
}

// NeedLeaderElection: every replica is a member.
func (m *Member) NeedLeaderElection() bool { return false }

// Start renews this member's Lease and reads the membership every RenewInterval until ctx ends,
// then deletes its Lease so the others take over at once.
func (m *Member) Start(ctx context.Context) error {
	t := time.NewTicker(m.opts.RenewInterval)
	defer t.Stop()
	for {
		m.tick(ctx)
		select {
		case <-ctx.Done():
			m.release()
			return nil
		case <-t.C:
		}
	}
}

// tick renews the Lease and rereads the membership; errors are logged (the member fences itself
// when renewals fail for LeaseDuration).
func (m *Member) tick(ctx context.Context) {
	if err := m.renew(ctx); err != nil {
		m.opts.Log.Error(err, "cannot renew the shard member lease", "lease", LeaseName(m.opts.Group, m.opts.Identity))
	} else {
		m.mu.Lock()
		m.renewed = m.opts.Now()
		m.mu.Unlock()
	}
	members, err := m.list(ctx)
	if err != nil {
		m.opts.Log.Error(err, "cannot read the shard members")
		return
	}
	if current, changed := m.observe(members); changed {
		m.opts.Log.Info("shard ownership may have changed", "members", current)
		m.opts.OnChange()
	}
}

// observe records a membership read; changed reports whether what this member owns may differ
// from before (the latest or the stable membership, or the fencing state, changed).
func (m *Member) observe(members []string) (current []string, changed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	if !slices.Equal(members, m.current) {
		m.current, m.since, changed = members, now, true
	}
	if now.Sub(m.since) >= m.opts.HandoverDelay && !slices.Equal(m.stable, m.current) {
		m.stable, changed = m.current, true
	}
	fenced := m.renewed.IsZero() || now.Sub(m.renewed) >= m.opts.LeaseDuration
	if fenced != m.fenced {
		m.fenced, changed = fenced, true
	}
	return m.current, changed
}

func (m *Member) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.opts.RenewInterval)
	defer cancel()
	name := LeaseName(m.opts.Group, m.opts.Identity)
	now := metav1.NewMicroTime(m.opts.Now())
	l := &coordinationv1.Lease{}
	err := m.c.Get(ctx, client.ObjectKey{Namespace: m.opts.Namespace, Name: name}, l)
	switch {
	case apierrors.IsNotFound(err):
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: m.opts.Namespace, Name: name, Labels: map[string]string{LabelGroup: m.opts.Group}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(m.opts.Identity), RenewTime: &now, AcquireTime: &now,
				LeaseDurationSeconds: ptr.To(int32(m.opts.LeaseDuration.Seconds()))},
		}
		if err := m.c.Create(ctx, l); err != nil {
			return fmt.Errorf("create lease %s/%s: %w", m.opts.Namespace, name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("get lease %s/%s: %w", m.opts.Namespace, name, err)
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(m.opts.Identity)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(m.opts.LeaseDuration.Seconds()))
	if err := m.c.Update(ctx, l); err != nil {
		return fmt.Errorf("renew lease %s/%s: %w", m.opts.Namespace, name, err)
	}
	return nil
}

// list returns the identities of the live members (Leases of the group renewed within their
// duration), sorted.
func (m *Member) list(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.RenewInterval)
	defer cancel()
	var l coordinationv1.LeaseList
	if err := m.c.List(ctx, &l, client.InNamespace(m.opts.Namespace), client.MatchingLabels{LabelGroup: m.opts.Group}); err != nil {
		return nil, fmt.Errorf("list leases of shard group %s: %w", m.opts.Group, err)
	}
	now := m.opts.Now()
	var out []string
	for _, lease := range l.Items {
		s := lease.Spec
		if s.HolderIdentity == nil || s.RenewTime == nil {
			continue
		}
		d := m.opts.LeaseDuration
		if s.LeaseDurationSeconds != nil {
			d = time.Duration(*s.LeaseDurationSeconds) * time.Second
		}
		if now.Sub(s.RenewTime.Time) < d {
			out = append(out, *s.HolderIdentity)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// release deletes this member's Lease (best effort, on shutdown).
func (m *Member) release() {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.RenewInterval)
	defer cancel()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: m.opts.Namespace, Name: LeaseName(m.opts.Group, m.opts.Identity)}}
	if err := m.c.Delete(ctx, l); err != nil && !apierrors.IsNotFound(err) {
		m.opts.Log.Error(err, "cannot delete the shard member lease on shutdown")
	}
	m.mu.Lock()
	m.renewed = time.Time{}
	m.mu.Unlock()
}
