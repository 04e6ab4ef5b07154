package discovery

// A credential group's refresh runs in steps whose inputs and outputs are values, in the manner
// of Prometheus' discovery/refresh (a small refresh function under a generic loop):
//
//	listGroup   group key → its secret → AWS clients → DescribeInstances pages → *listing
//	            (the instance index, and the pages, calls and clients the attempt used, also
//	            when it failed);
//	Auditor     the attempt's clients and error → GroupAudit (the IAM decision);
//	matchGroup  the last good listing × the group's Upstreams × the audit → one memberUpdate per
//	            Upstream: its selection, endpoints and annotation status (pure: no I/O);
//	writeMember one memberUpdate → Service, EndpointSlices, annotation, report, metrics (the
//	            Publisher diffs against the cache and writes only what changed);
//	observe     the attempt and the writes → metrics, log, RefreshReport.
//
// The generic Loop (loop.go) schedules the attempts, keeps the last good listing and hands every
// Result to update. The runner keeps only what outlives one attempt: the last result and audit
// (re-matched when the group's Upstreams change) and the members whose publication backs off.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// awsRequest builds the AWS client request of a group, reading its secret from the cache.
func (d *Discoverer) awsRequest(ctx context.Context, key GroupKey) (awsclients.Request, error) {
	req := awsclients.Request{Region: key.Region, RoleARN: key.RoleARN}
	if key.UsesDefaultCredentials() {
		return req, nil
	}
	s := &corev1.Secret{}
	// Read-only: ParseSecret copies the credentials out, NewSecretVersion keeps no reference.
	if err := d.deps.Reader.Get(ctx, key.Secret, s, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return req, fmt.Errorf("secret %s not found", key.Secret)
		}
		return req, fmt.Errorf("get secret %s: %w", key.Secret, err)
	}
	creds, findings := ec2.ParseSecret(s)
	if findings.HasErrors() {
		errs := findings.Errors()
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			msgs = append(msgs, e.Detail)
		}
		return req, fmt.Errorf("secret %s is not a usable AWS secret: %s", key.Secret, strings.Join(msgs, "; "))
	}
	req.Secret = awsclients.NewSecretVersion(s, creds)
	return req, nil
}

// listing is one listing attempt of a group: the running instances (nil index when the attempt
// failed) and what the attempt used.
type listing struct {
	index *Index
	// pages is the number of DescribeInstances pages fetched, calls the number of attempts made
	// (pages plus failed attempts and retries).
	pages, calls int
	// clients are the group's AWS clients (nil when they could not be built); the audit uses them.
	clients *awsclients.Clients
}

// listGroup lists the running instances of a group (one paginated DescribeInstances). The
// returned listing is never nil: on error it holds what the attempt cost.
func (d *Discoverer) listGroup(ctx context.Context, key GroupKey) (*listing, error) {
	l := &listing{}
	req, err := d.awsRequest(ctx, key)
	if err != nil {
		return l, err
	}
	c, err := d.deps.AWS.Get(ctx, req)
	if err != nil {
		return l, fmt.Errorf("AWS clients for group %s: %w", key, err)
	}
	l.clients = c
	var calls atomic.Int64
	insts, pages, err := ec2api.ListRunningInstances(ctx, c.EC2, nil, countEC2Attempts(d.deps.Metrics, &calls))
	l.pages, l.calls = pages, int(calls.Load())
	if err != nil {
		return l, fmt.Errorf("list running instances in %s with %s: %w", key.Region, c.Key.CredentialSource(), err)
	}
	l.index = NewIndex(dedupe(insts))
	return l, nil
}

// dedupe drops repeated instance IDs (a listing that changed between pages).
func dedupe(insts []ec2api.Instance) []ec2api.Instance {
	seen := make(map[string]struct{}, len(insts))
	out := insts[:0]
	for _, i := range insts {
		if _, dup := seen[i.ID]; dup {
			continue
		}
		seen[i.ID] = struct{}{}
		out = append(out, i)
	}
	return out
}

// memberUpdate is what one refresh (or re-match) decided for one Upstream of the group.
type memberUpdate struct {
	target *Target
	// listed is true when a listing is in use: eps are then the endpoints to publish. Without one
	// (no listing has succeeded yet) only the Service's stale mark is updated.
	listed bool
	eps    []Endpoint
	// status is the annotation's content, before the publication's own outcome is added.
	status discovered.Status
}

// matchGroup matches every member against the last good listing of res and computes its
// endpoints and status. It does no I/O.
func matchGroup(key GroupKey, res Result[*listing], members []*Target, audit GroupAudit) []memberUpdate {
	var ix *Index
	var sels []Selection
	var overlaps [][]int32
	if res.HasValue {
		ix = res.Value.index
		sels = ix.SelectAll(members)
		overlaps = Overlaps(ix.Len(), sels)
	}
	base := discovered.Status{Group: key.String(), LastError: ErrorSummary(res.Err), Stale: res.Err != nil}
	if res.Err != nil && !res.StaleSince.IsZero() {
		base.StaleSince = res.StaleSince.UTC().Format(time.RFC3339)
	}
	iam := audit.IAM
	base.IAM = &iam
	out := make([]memberUpdate, len(members))
	for i, t := range members {
		st := base
		v := audit.Verdict(t.Upstream)
		st.Consistency = v.Consistency
		for _, p := range v.Problems {
			st.IAMCodes = append(st.IAMCodes, p.Code)
		}
		u := memberUpdate{target: t, listed: ix != nil}
		if ix != nil {
			eps, skips := BuildEndpoints(t, ix, sels[i].Exact)
			fillStatus(&st, ix, sels[i], overlaps[i], eps, skips)
			u.eps = eps
		}
		u.status = st
		out[i] = u
	}
	return out
}

// fillStatus puts a selection's counts and examples into a status.
func fillStatus(st *discovered.Status, ix *Index, sel Selection, overlap []int32, eps []Endpoint, skips []discovered.Skip) {
	st.Count = len(eps)
	st.Matched = len(sel.Exact)
	st.Skipped = len(skips)
	st.SkippedInstances = skips[:min(len(skips), maxExamples)]
	st.SkippedByReason = map[string]int{}
	for _, s := range skips {
		st.SkippedByReason[s.Reason]++
	}
	st.Overlap = len(overlap)
	st.OverlapInstances = instanceIDs(ix, overlap)
	st.CaseInsensitiveOnly = len(sel.LowercaseOnly)
	st.CaseInsensitiveOnlyInstances = instanceIDs(ix, sel.LowercaseOnly)
}

// instanceIDs returns the sorted IDs of the first instances at pos (at most maxExamples).
func instanceIDs(ix *Index, pos []int32) []string {
	if len(pos) == 0 {
		return nil
	}
	ids := make([]string, 0, len(pos))
	for _, p := range pos {
		ids = append(ids, ix.Instance(p).ID)
	}
	slices.Sort(ids)
	return ids[:min(len(ids), maxExamples)]
}

// groupRunner refreshes one credential group.
type groupRunner struct {
	d         *Discoverer
	key       GroupKey
	tagSource *TagSource
	loop      *Loop[*listing]
	members   atomic.Pointer[[]*Target]
	membersFP string // regroup goroutine only
	rematchCh chan struct{}
	cancel    context.CancelFunc
	done      chan struct{}

	stale atomic.Bool

	mu sync.Mutex // serializes updates and re-matches; guards the fields below
	// last and lastAudit are the latest attempt's result and audit, re-matched when the group's
	// Upstreams change.
	last      *Result[*listing]
	lastAudit GroupAudit
	// failing holds, by Upstream UID, the members whose Service or EndpointSlices could not be
	// written.
	failing map[types.UID]*publishFailure
}

// publishFailure is a member whose publication failed: it is retried after a per-Upstream
// backoff (Interval·2ⁿ after n failures, capped at MaxBackoff), or at once when the Upstream
// changes, instead of on every refresh.
type publishFailure struct {
	fingerprint string
	failures    int
	next        time.Time
	summary     string
}

func (d *Discoverer) startRunner(ctx context.Context, key GroupKey, members []*Target, src *TagSource) (*groupRunner, error) {
	r := &groupRunner{d: d, key: key, tagSource: src, rematchCh: make(chan struct{}, 1), done: make(chan struct{}),
		failing: map[types.UID]*publishFailure{}}
	r.setMembers(members)
	loop, err := NewLoop(d.opts.Loop, r.refresh, r.update)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", key, err)
	}
	r.loop = loop
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	var wg sync.WaitGroup
	wg.Go(func() { loop.Run(rctx) })
	wg.Go(func() { r.rematchLoop(rctx) })
	go func() {
		wg.Wait()
		close(r.done)
	}()
	d.deps.Log.Info("refreshing credential group", "group", key.String(), "upstreams", len(members), "discoverFromTags", src != nil)
	return r, nil
}

func (r *groupRunner) stop() {
	r.cancel()
	<-r.done
	if r.stale.Swap(false) {
		r.d.stale.Add(-1)
	}
}

// setMembers replaces the group's Upstreams and reports whether they discover differently now.
func (r *groupRunner) setMembers(members []*Target) bool {
	var b strings.Builder
	for _, t := range members {
		b.WriteString(t.fingerprint)
		b.WriteByte(0)
	}
	fp := b.String()
	r.members.Store(&members)
	changed := fp != r.membersFP
	r.membersFP = fp
	return changed
}

func (r *groupRunner) requestRematch() {
	select {
	case r.rematchCh <- struct{}{}:
	default:
	}
}

// refresh is the loop's refresh function: listGroup. A panic in it becomes the attempt's error:
// one group's bad listing cannot stop the others.
func (r *groupRunner) refresh(ctx context.Context) (l *listing, err error) {
	defer func() {
		if p := recover(); p != nil {
			l, err = &listing{}, fmt.Errorf("internal error listing group %s: %v", r.key, p)
		}
	}()
	return r.d.listGroup(ctx, r.key)
}

// update is the loop's update function, run after every attempt: audit, match, write, observe.
func (r *groupRunner) update(ctx context.Context, res Result[*listing]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			r.d.deps.Log.Error(fmt.Errorf("panic: %v", p), "internal error publishing a credential group; the next refresh tries again", "group", r.key.String())
		}
	}()
	attempt := res.Attempt
	if attempt == nil {
		attempt = &listing{}
	}
	r.last = &res
	actx, cancel := context.WithTimeout(ctx, auditTimeout)
	audit := r.d.deps.Auditor.Audit(actx, attempt.clients, r.key.Region, res.Err)
	cancel()
	r.lastAudit = audit
	rep := r.publish(ctx, res, audit, false)
	rep.Pages, rep.Calls = attempt.pages, attempt.calls
	r.observe(res, rep)
}

// observe records an attempt in the metrics and the log and calls the OnRefresh hook.
func (r *groupRunner) observe(res Result[*listing], rep RefreshReport) {
	m := r.d.deps.Metrics
	m.refreshed(r.key.String(), res.Err == nil, r.d.opts.Loop.Clock.Since(res.Started).Seconds())
	if res.Err == nil {
		m.listing(r.key.String(), rep.Pages, rep.Instances)
	}
	if was := r.stale.Swap(res.Err != nil); was != (res.Err != nil) {
		if was {
			r.d.stale.Add(-1)
		} else {
			r.d.stale.Add(1)
		}
	}
	m.staleGroups.Set(float64(r.d.stale.Load()))

	log := r.d.deps.Log
	switch {
	case res.Err != nil:
		log.Error(res.Err, "refresh failed; keeping the last good endpoints, marked stale", r.logValues(res, rep, "failures", res.Failures, "hadListing", res.HasValue)...)
	case rep.PublishErr != nil:
		log.Error(rep.PublishErr, "refreshed, but publishing failed", r.logValues(res, rep)...)
	default:
		if v := log.V(1); v.Enabled() {
			v.Info("refreshed", r.logValues(res, rep)...)
		}
	}
	if r.d.opts.Hooks.OnRefresh != nil {
		r.d.opts.Hooks.OnRefresh(rep)
	}
}

func (r *groupRunner) logValues(res Result[*listing], rep RefreshReport, more ...any) []any {
	return append([]any{"group", r.key.String(), "seq", res.Seq, "pages", rep.Pages, "calls", rep.Calls,
		"instances", rep.Instances, "upstreams", rep.Upstreams, "writes", rep.Writes}, more...)
}

// rematchLoop re-matches the last listing when the group's Upstreams changed, so a new or
// edited Upstream is published without waiting for (or paying) the next listing.
func (r *groupRunner) rematchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.rematchCh:
		}
		r.mu.Lock()
		if r.last != nil {
			uctx, cancel := context.WithTimeout(ctx, r.d.opts.Loop.Timeout)
			rep := r.publish(uctx, *r.last, r.lastAudit, true)
			cancel()
			if ctx.Err() == nil && r.d.opts.Hooks.OnRefresh != nil {
				r.d.opts.Hooks.OnRefresh(rep)
			}
		}
		r.mu.Unlock()
	}
}

// publish matches every Upstream of the group against the listing in res (the last good one),
// writes each one's endpoints, annotation and report and, for a discover-from-tags group after a
// good listing, syncs the generated Upstreams. It runs under r.mu.
func (r *groupRunner) publish(ctx context.Context, res Result[*listing], audit GroupAudit, rematch bool) RefreshReport {
	members := *r.members.Load()
	rep := RefreshReport{
		Group: r.key, Seq: res.Seq, Rematch: rematch, Started: res.Started, Finished: res.Finished,
		Err: res.Err, Stale: res.Err != nil, Upstreams: len(members),
	}
	var ix *Index
	if res.HasValue {
		ix = res.Value.index
		rep.Instances = ix.Len()
	}
	var staleSince time.Time
	if res.Err != nil {
		staleSince = res.StaleSince
	}
	var n tally
	for _, u := range matchGroup(r.key, res, members, audit) {
		if n.stopped(ctx) {
			break
		}
		n.add(r.writeMember(ctx, u, staleSince))
	}
	if !rematch && res.Err == nil && r.tagSource != nil {
		n.add(r.d.generator.Sync(ctx, *r.tagSource, r.key, ix))
	}
	rep.Writes, rep.PublishErr = n.result()
	return rep
}

// writeMember publishes, annotates and reports one member of the group, unless the regroup
// refused it meanwhile (checked under the discoverer's refusal lock, held for the whole
// publication so that a refusal's cleanup cannot be undone by it). A member whose publication
// failed is retried after its backoff (r.failing, under r.mu). It returns the number of writes.
func (r *groupRunner) writeMember(ctx context.Context, u memberUpdate, staleSince time.Time) (int, error) {
	t, st := u.target, u.status
	r.d.refusedMu.RLock()
	defer r.d.refusedMu.RUnlock()
	if r.d.refusedUID(t.UID) {
		return 0, nil
	}
	var writes int
	var errs []error
	var w int
	var perr error
	now := r.d.opts.Loop.Clock.Now()
	f := r.failing[t.UID]
	if f != nil && f.fingerprint != t.fingerprint {
		f = nil // the Upstream changed: try at once
	}
	backingOff := f != nil && now.Before(f.next)
	if r.d.publisher != nil && !backingOff {
		if u.listed {
			w, perr = r.d.publisher.Sync(ctx, t, u.eps, staleSince)
		} else {
			w, perr = r.d.publisher.MarkStale(ctx, t, staleSince)
		}
	}
	writes += w
	switch {
	case backingOff:
	case perr != nil && ctx.Err() == nil:
		if f == nil {
			f = &publishFailure{fingerprint: t.fingerprint}
		}
		f.failures++
		f.next = now.Add(backoff(r.d.opts.Loop.Interval, r.d.opts.Loop.MaxBackoff, f.failures))
		f.summary = ErrorSummary(perr)
		r.failing[t.UID] = f
		errs = append(errs, perr)
	case perr != nil:
		errs = append(errs, perr) // cancelled: not the object's fault
	default:
		f = nil
		delete(r.failing, t.UID)
	}
	if f != nil {
		if st.LastError == "" {
			st.LastError = string(codes.PublishFailed) + ": " + codes.PublishFailed.Message(f.failures, f.summary)
		}
	} else if perr != nil && st.LastError == "" {
		st.LastError = "publishing: " + ErrorSummary(perr)
	}
	w, serr := r.d.writeStatus(ctx, t, st)
	writes += w
	errs = append(errs, serr)
	r.d.deps.Metrics.upstream(t.Upstream.Namespace, t.Upstream.Name, &st)
	if f != nil {
		r.d.deps.Metrics.publishFailing(t.Upstream.Namespace, t.Upstream.Name, f.failures)
	}
	return writes, errors.Join(errs...)
}
