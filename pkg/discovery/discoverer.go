package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// Publishing modes.
const (
	// PublishEndpointSlices publishes a Service and EndpointSlices per EC2 Upstream.
	PublishEndpointSlices = "endpointslices"
	// PublishNone only discovers, audits and annotates.
	PublishNone = "none"
)

// DefaultMaxConcurrentRefreshes bounds how many credential groups refresh at once.
const DefaultMaxConcurrentRefreshes = 8

// auditTimeout bounds the IAM audit of one refresh (principal, policy collection, engine), so
// that slow IAM reads delay the group's annotations by at most this much.
const auditTimeout = 30 * time.Second

// Options configures a Discoverer.
type Options struct {
	// Loop is the per-group refresh schedule (interval, jitter, deadline, backoff).
	Loop LoopOptions
	// MaxConcurrentRefreshes bounds concurrent group refreshes (default 8).
	MaxConcurrentRefreshes int
	// Publish is PublishEndpointSlices (default) or PublishNone.
	Publish string
	// ServiceType is ServiceHeadless (default) or ServiceClusterIP.
	ServiceType string
	// DefaultPortTag is the --port-tag default for Upstreams without the ec2guard.io/port-tag
	// annotation ("" for none).
	DefaultPortTag string
	// ZoneHints adds hints.forZones to every endpoint (its zone is always set).
	ZoneHints bool
	// TagSources enable discover-from-tags.
	TagSources []TagSource
	// PodIdentityNamespaces are the namespaces whose Upstreams without a secretRef may be
	// discovered with the discoverer's own AWS identity (IRSA, EKS Pod Identity, instance
	// profile). Empty: none. Upstreams elsewhere are refused (EC2G702).
	PodIdentityNamespaces ec2.NamespaceList
	// AnnotationHeartbeat renews the lastRefresh of an unchanged ec2guard.io/discovered
	// annotation at most this often (0: only when the content changes).
	AnnotationHeartbeat time.Duration
	// Hooks observe the discoverer (tests, diagnostics).
	Hooks Hooks
	// Shard, when set, limits the discoverer to the credential groups it owns (pkg/sharding);
	// every replica then runs instead of only the elected leader.
	Shard Owner
}

// Owner says whether this replica works on a key: a credential group's GroupKey.String(), or
// "upstream/<namespace>/<name>" for what concerns one Upstream and no group.
type Owner interface {
	Owns(key string) bool
}

// Hooks are called synchronously from the discoverer's goroutines; they must be quick and safe
// for concurrent use.
type Hooks struct {
	// OnRefresh runs after every group refresh (listing, audit, publication, annotation) and
	// after every re-match of a group's last listing when its Upstreams changed.
	OnRefresh func(RefreshReport)
	// OnRegroup runs after the Upstreams were regrouped (and removed ones cleaned up).
	OnRegroup func(RegroupReport)
}

// RefreshReport describes one finished group refresh.
type RefreshReport struct {
	Group GroupKey
	// Seq numbers the group's refresh attempts from 1.
	Seq uint64
	// Rematch is true for a re-match of the last listing (no AWS call), made when the group's
	// Upstreams changed.
	Rematch bool
	// Started and Finished bracket the listing.
	Started, Finished time.Time
	// Err is the listing's error; Stale is true when the published endpoints are older than this
	// refresh (Err != nil).
	Err   error
	Stale bool
	// Pages is the number of DescribeInstances pages fetched; Calls the number of
	// DescribeInstances attempts made (pages plus failed attempts and retries). Both are 0 for a
	// re-match.
	Pages, Calls int
	// Instances is the number of running instances of the listing in use.
	Instances int
	// Upstreams is the number of Upstreams in the group.
	Upstreams int
	// Writes counts Kubernetes API writes (Services, EndpointSlices, annotations, consistency
	// reports, generated Upstreams); PublishErr joins their errors.
	Writes     int
	PublishErr error
}

// RegroupReport describes one regrouping.
type RegroupReport struct {
	Upstreams int
	Groups    int
	// Decoded counts the Upstreams decoded and validated by this regrouping: those that are new
	// or changed (resourceVersion) since the previous one; the others are reused as they were.
	Decoded int
	// Refused are the EC2 Upstreams not discovered because they may not use the credentials they
	// name (EC2G701, EC2G702).
	Refused []types.NamespacedName
	// Removed are Upstreams that were deleted (or stopped being EC2 Upstreams); what was
	// published for them has been deleted.
	Removed []types.NamespacedName
	Writes  int
	Err     error
}

// Deps are the discoverer's collaborators.
type Deps struct {
	// Reader reads Upstreams, Secrets, Services and EndpointSlices (the manager's cache).
	Reader client.Reader
	// APIReader reads from the API server directly (conflict resolution).
	APIReader client.Reader
	// Writer writes Services, EndpointSlices and Upstreams.
	Writer client.Writer
	// Informers, when set, are watched for Upstream and Secret changes and waited for at start.
	Informers cache.Informers
	// AWS builds the AWS clients of each credential group.
	AWS *awsclients.Factory
	// Auditor re-evaluates IAM; nil keeps only the listing's own outcome as IAM source.
	Auditor *Auditor
	// Reports, when set, receives every Upstream's audit (pkg/report's consistency reports).
	Reports ReportSink
	Metrics *Metrics
	Log     logr.Logger
}

// ReportSink keeps a consistency report per EC2 Upstream (implemented by pkg/report.Writer). Its
// methods return the number of Kubernetes API writes they made; like the annotation, a report is
// written only when its content changed.
type ReportSink interface {
	// Write records the audit of an Upstream after a refresh or re-match.
	Write(ctx context.Context, t *Target, st Status) (int, error)
	// Delete removes the report of an Upstream that went away.
	Delete(ctx context.Context, key types.NamespacedName) (int, error)
	// DeleteOrphans removes the reports of Upstreams whose UID is not live (at start).
	DeleteOrphans(ctx context.Context, live map[types.UID]bool) (int, error)
}

// Discoverer discovers the instances of every EC2 Upstream, one credential group at a time, and
// publishes them. It is a leader-elected manager.Runnable.
type Discoverer struct {
	opts      Options
	deps      Deps
	publisher *Publisher
	annotator *Annotator
	generator *Generator
	limiter   chan struct{}
	regroupCh chan struct{}
	synced    atomic.Bool
	stale     atomic.Int64
	// triggerAll asks the next regroup to trigger every group's loop.
	triggerAll atomic.Bool

	secretsMu      sync.Mutex
	changedSecrets map[types.NamespacedName]bool

	// refusedMu orders publication against refusals: a member is published under the read lock
	// only when its UID is not in refusedUIDs; the regroup takes the write lock to update the set
	// before deleting what was published for newly refused Upstreams, so an in-flight
	// publication cannot re-create it.
	refusedMu   sync.RWMutex
	refusedUIDs map[types.UID]bool

	// Owned by the Start goroutine.
	targets map[types.NamespacedName]*Target
	runners map[GroupKey]*groupRunner
	// notEC2 remembers, by UID, the resourceVersion of Upstreams that are not EC2 Upstreams (or
	// cannot be read), so they are not decoded again until they change.
	notEC2 map[types.UID]string
	// refusalsDone remembers the refusal (with the UID) whose cleanup, annotation and report
	// were written for an Upstream, so an unchanged refusal costs nothing on the next regroup.
	refusalsDone map[types.NamespacedName]string
}

var _ manager.LeaderElectionRunnable = (*Discoverer)(nil)

// New returns a discoverer.
func New(deps Deps, opts Options) (*Discoverer, error) {
	if deps.Reader == nil || deps.APIReader == nil || deps.Writer == nil || deps.AWS == nil || deps.Metrics == nil {
		return nil, errors.New("discoverer: Reader, APIReader, Writer, AWS and Metrics are required")
	}
	lo, err := opts.Loop.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("discoverer: %w", err)
	}
	opts.Loop = lo
	if opts.MaxConcurrentRefreshes <= 0 {
		opts.MaxConcurrentRefreshes = DefaultMaxConcurrentRefreshes
	}
	switch opts.Publish {
	case "":
		opts.Publish = PublishEndpointSlices
	case PublishEndpointSlices, PublishNone:
	default:
		return nil, fmt.Errorf("discoverer: publishing mode %q: must be %q or %q", opts.Publish, PublishEndpointSlices, PublishNone)
	}
	switch opts.ServiceType {
	case "":
		opts.ServiceType = ServiceHeadless
	case ServiceHeadless, ServiceClusterIP:
	default:
		return nil, fmt.Errorf("discoverer: service type %q: must be %q or %q", opts.ServiceType, ServiceHeadless, ServiceClusterIP)
	}
	if opts.AnnotationHeartbeat < 0 {
		return nil, fmt.Errorf("discoverer: annotation heartbeat %s: must not be negative", opts.AnnotationHeartbeat)
	}
	for i, s := range opts.TagSources {
		if s.Secret.Name == "" || s.Secret.Namespace == "" || len(s.Regions) == 0 {
			return nil, fmt.Errorf("discoverer: tag source %d: a secret (namespace/name) and at least one region are required", i)
		}
	}
	d := &Discoverer{
		opts:           opts,
		deps:           deps,
		annotator:      NewAnnotator(deps.Reader, deps.Writer, deps.Metrics, opts.Loop.Clock, opts.AnnotationHeartbeat, deps.Log),
		generator:      NewGenerator(deps.Reader, deps.Writer, deps.Metrics, deps.Log),
		limiter:        make(chan struct{}, opts.MaxConcurrentRefreshes),
		regroupCh:      make(chan struct{}, 1),
		changedSecrets: map[types.NamespacedName]bool{},
		targets:        map[types.NamespacedName]*Target{},
		runners:        map[GroupKey]*groupRunner{},
		notEC2:         map[types.UID]string{},
		refusalsDone:   map[types.NamespacedName]string{},
		refusedUIDs:    map[types.UID]bool{},
	}
	if opts.Publish == PublishEndpointSlices {
		d.publisher = NewPublisher(deps.Reader, deps.APIReader, deps.Writer, deps.Metrics, opts.ZoneHints, opts.ServiceType, deps.Log)
	}
	d.opts.Loop.Limiter = d.limiter
	return d, nil
}

// SetupWithManager watches Upstreams and Secrets through the manager's informers, adds the
// discoverer as a leader-elected runnable and a runnable that marks readiness once the caches
// synced (on every replica).
func (d *Discoverer) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	if err := d.Watch(ctx); err != nil {
		return err
	}
	if err := mgr.Add(readiness{d}); err != nil {
		return fmt.Errorf("add readiness runnable: %w", err)
	}
	if err := mgr.Add(d); err != nil {
		return fmt.Errorf("add discoverer: %w", err)
	}
	return nil
}

// readiness marks the discoverer ready once the caches synced, on every replica (leader or not).
type readiness struct{ d *Discoverer }

func (r readiness) NeedLeaderElection() bool { return false }

func (r readiness) Start(ctx context.Context) error {
	if r.d.deps.Informers != nil && !r.d.deps.Informers.WaitForCacheSync(ctx) {
		return nil // stopped before the caches synced
	}
	r.d.synced.Store(true)
	<-ctx.Done()
	return nil
}

// Watch registers the Upstream and Secret event handlers on Deps.Informers.
func (d *Discoverer) Watch(ctx context.Context) error {
	if d.deps.Informers == nil {
		return nil
	}
	up, err := d.deps.Informers.GetInformer(ctx, NewUpstreamObject())
	if err != nil {
		return fmt.Errorf("upstream informer: %w", err)
	}
	if _, err := up.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.Regroup() },
		UpdateFunc: func(any, any) { d.Regroup() },
		DeleteFunc: func(any) { d.Regroup() },
	}); err != nil {
		return fmt.Errorf("upstream event handler: %w", err)
	}
	sec, err := d.deps.Informers.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return fmt.Errorf("secret informer: %w", err)
	}
	// Only Gloo AWS secrets matter (a secret that stops being one, too).
	if _, err := sec.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if isAWSSecret(obj) {
				d.secretChanged(obj)
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Secret)
			n, ok2 := newObj.(*corev1.Secret)
			if !ok1 || !ok2 || o.ResourceVersion == n.ResourceVersion || !(isAWSSecret(o) || isAWSSecret(n)) {
				return // resync, or not an AWS secret
			}
			d.secretChanged(newObj)
		},
		DeleteFunc: func(obj any) { d.secretChanged(obj) },
	}); err != nil {
		return fmt.Errorf("secret event handler: %w", err)
	}
	return nil
}

// isAWSSecret reports whether obj is a Secret with an aws_access_key_id (the cache keeps the data
// of those only).
func isAWSSecret(obj any) bool {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return false
	}
	_, has := s.Data[ec2.SecretKeyAccessKeyID]
	return has
}

func (d *Discoverer) secretChanged(obj any) {
	if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	d.secretsMu.Lock()
	d.changedSecrets[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = true
	d.secretsMu.Unlock()
	d.Regroup()
}

func (d *Discoverer) takeChangedSecrets() map[types.NamespacedName]bool {
	d.secretsMu.Lock()
	defer d.secretsMu.Unlock()
	out := d.changedSecrets
	d.changedSecrets = map[types.NamespacedName]bool{}
	return out
}

// Regroup asks for the Upstreams to be read and regrouped (coalescing; never blocks).
func (d *Discoverer) Regroup() {
	select {
	case d.regroupCh <- struct{}{}:
	default:
	}
}

// TriggerAll asks every credential group for an immediate refresh.
func (d *Discoverer) TriggerAll() {
	// runners is owned by the Start goroutine; triggering goes through it.
	d.triggerAll.Store(true)
	d.Regroup()
}

// NeedLeaderElection makes only the leader discover and write, unless the groups are sharded.
func (d *Discoverer) NeedLeaderElection() bool { return d.opts.Shard == nil }

// ownsUpstream: with sharding, what concerns one Upstream and no credential group (cleaning up
// after a removed one, annotating an invalid or refused one) is done by the replica that owns its
// key.
func (d *Discoverer) ownsUpstream(key types.NamespacedName) bool {
	return d.opts.Shard == nil || d.opts.Shard.Owns("upstream/"+key.String())
}

// owned keeps the planned groups this replica owns (all of them without sharding).
func (d *Discoverer) owned(p groupPlan) groupPlan {
	if d.opts.Shard == nil {
		return p
	}
	for k := range p.groups {
		if !d.opts.Shard.Owns(k.String()) {
			delete(p.groups, k)
		}
	}
	return p
}

// ReadyCheck is a healthz.Checker: ready once the caches have synced.
func (d *Discoverer) ReadyCheck(*http.Request) error {
	if !d.synced.Load() {
		return errors.New("caches have not synced yet")
	}
	return nil
}

// Start runs the discoverer until ctx ends: regroups on every Upstream or Secret change and runs
// one refresh loop per credential group. On shutdown it stops the loops (in-flight AWS calls and
// writes are cancelled) and leaves what was published in place for the next leader.
func (d *Discoverer) Start(ctx context.Context) error {
	if d.deps.Informers != nil && !d.deps.Informers.WaitForCacheSync(ctx) {
		return errors.New("discoverer: caches did not sync")
	}
	d.synced.Store(true)
	d.deps.Log.Info("discoverer started", "interval", d.opts.Loop.Interval, "publish", d.opts.Publish,
		"portTag", d.opts.DefaultPortTag, "tagSources", len(d.opts.TagSources))
	first := true
	for {
		d.regroup(ctx, first)
		first = false
		select {
		case <-ctx.Done():
			d.stopAll()
			d.deps.Log.Info("discoverer stopped")
			return nil
		case <-d.regroupCh:
		}
	}
}

func (d *Discoverer) stopAll() {
	for key, r := range d.runners {
		r.stop()
		delete(d.runners, key)
	}
}

// regroup reads the Upstreams, cleans up after removed ones, and starts, updates or stops the
// group loops. It runs in steps whose inputs and outputs are values: read the targets, find the
// removed ones, decide credential use, plan the groups (pure), then apply each (writes).
func (d *Discoverer) regroup(ctx context.Context, first bool) {
	rep := RegroupReport{}
	defer func() {
		if d.opts.Hooks.OnRegroup != nil {
			d.opts.Hooks.OnRegroup(rep)
		}
	}()
	list := NewUpstreamList()
	if err := d.deps.Reader.List(ctx, list); err != nil {
		rep.Err = fmt.Errorf("list upstreams: %w", err)
		d.deps.Log.Error(err, "cannot list upstreams; keeping the current groups")
		return
	}
	targets, decoded := d.readTargets(list)
	rep.Decoded, rep.Upstreams = decoded, len(targets)
	removed := removedTargets(d.targets, targets)
	refusals := d.credentialUses(ctx, targets)
	plan := d.owned(planGroups(targets, refusals, d.opts.TagSources))
	rep.Removed = sortedKeys(removed)
	rep.Refused = sortedKeys(refusals)

	var errs []error
	apply := func(w int, err error) {
		rep.Writes += w
		errs = append(errs, err)
	}
	apply(d.cleanUpRemoved(ctx, removed))
	if first {
		apply(d.deleteOrphans(ctx, targets))
	}
	apply(d.annotateInvalid(ctx, targets, d.targets))
	apply(d.applyRefusals(ctx, targets, refusals))
	errs = append(errs, d.applyPlan(ctx, plan))
	d.targets = targets
	rep.Groups = len(d.runners)
	d.deps.Metrics.setGroups(len(d.runners), int(d.stale.Load()))
	rep.Err = errors.Join(errs...)
	if rep.Err != nil {
		d.deps.Log.Error(rep.Err, "regrouping upstreams")
	}
}

func sortedKeys[V any](m map[types.NamespacedName]V) []types.NamespacedName {
	return slices.SortedFunc(maps.Keys(m), func(a, b types.NamespacedName) int { return cmp.Compare(a.String(), b.String()) })
}

// removedTargets returns the previous targets that are gone from now (deleted, no longer EC2
// Upstreams, or recreated under the same name with another UID).
func removedTargets(prev, now map[types.NamespacedName]*Target) map[types.NamespacedName]*Target {
	out := map[types.NamespacedName]*Target{}
	for key, old := range prev {
		if nt, ok := now[key]; !ok || nt.UID != old.UID {
			out[key] = old
		}
	}
	return out
}

// groupPlan is the credential groups a regroup wants: their members, and the tag source of the
// discover-from-tags groups.
type groupPlan struct {
	groups  map[GroupKey][]*Target
	sources map[GroupKey]*TagSource
}

// planGroups groups the valid targets that are not refused by credential group and adds the
// groups of the tag sources (which exist even without members).
func planGroups(targets map[types.NamespacedName]*Target, refusals map[types.NamespacedName]*Refusal, tagSources []TagSource) groupPlan {
	all := make([]*Target, 0, len(targets))
	for key, t := range targets {
		if refusals[key] == nil {
			all = append(all, t)
		}
	}
	p := groupPlan{groups: GroupTargets(all), sources: map[GroupKey]*TagSource{}}
	for i := range tagSources {
		for _, k := range tagSources[i].Groups() {
			p.sources[k] = &tagSources[i]
			if _, ok := p.groups[k]; !ok {
				p.groups[k] = nil
			}
		}
	}
	return p
}

// cleanUpRemoved deletes what was published for removed Upstreams, and their reports.
func (d *Discoverer) cleanUpRemoved(ctx context.Context, removed map[types.NamespacedName]*Target) (int, error) {
	writes := 0
	var errs []error
	for _, key := range sortedKeys(removed) {
		if !d.ownsUpstream(key) {
			continue
		}
		old := removed[key]
		d.deps.Metrics.forgetUpstream(key.Namespace, key.Name)
		if d.publisher != nil {
			w, err := d.publisher.DeleteFor(ctx, key.Namespace, old.UID)
			writes += w
			errs = append(errs, err)
		}
		if d.deps.Reports != nil {
			w, err := d.deps.Reports.Delete(ctx, key)
			writes += w
			errs = append(errs, err)
		}
		d.deps.Log.Info("upstream removed; deleted what was published for it", "upstream", key.String())
	}
	return writes, errors.Join(errs...)
}

// deleteOrphans deletes, at start, what was published and reported for Upstreams that no longer
// exist.
func (d *Discoverer) deleteOrphans(ctx context.Context, targets map[types.NamespacedName]*Target) (int, error) {
	if d.publisher == nil && d.deps.Reports == nil {
		return 0, nil
	}
	live := make(map[types.UID]bool, len(targets))
	for _, t := range targets {
		live[t.UID] = true
	}
	writes := 0
	var errs []error
	if d.publisher != nil {
		w, err := d.publisher.DeleteOrphans(ctx, live)
		writes += w
		errs = append(errs, err)
	}
	if d.deps.Reports != nil {
		w, err := d.deps.Reports.DeleteOrphans(ctx, live)
		writes += w
		errs = append(errs, err)
	}
	return writes, errors.Join(errs...)
}

// annotateInvalid says on each invalid Upstream (new or changed since prev) why it is not
// discovered.
func (d *Discoverer) annotateInvalid(ctx context.Context, targets, prev map[types.NamespacedName]*Target) (int, error) {
	writes := 0
	var errs []error
	for key, t := range targets {
		if t.Invalid == "" || t.SameDiscovery(prev[key]) || !d.ownsUpstream(key) {
			continue
		}
		d.deps.Metrics.forgetUpstream(key.Namespace, key.Name)
		st := Status{LastError: "invalid upstream, not discovered: " + t.Invalid}
		w, err := d.annotator.Write(ctx, key, t.UID, st)
		writes += w
		errs = append(errs, err)
		if d.deps.Reports != nil {
			w, err := d.deps.Reports.Write(ctx, t, st)
			writes += w
			errs = append(errs, err)
		}
	}
	return writes, errors.Join(errs...)
}

// applyPlan stops the loops of groups that are no longer planned, starts the new ones, hands
// the others their members (re-matching when they changed) and triggers those whose secret
// changed (all of them after TriggerAll).
func (d *Discoverer) applyPlan(ctx context.Context, plan groupPlan) error {
	changed := d.takeChangedSecrets()
	triggerAll := d.triggerAll.Swap(false)
	for key, r := range d.runners {
		if _, ok := plan.groups[key]; !ok {
			r.stop()
			delete(d.runners, key)
			d.deps.Metrics.forgetGroup(key.String())
			d.deps.Log.Info("credential group has no upstreams any more, or another replica owns it; stopped refreshing it", "group", key.String())
		}
	}
	var errs []error
	for _, key := range SortedGroupKeys(plan.groups) {
		members := plan.groups[key]
		r, ok := d.runners[key]
		if !ok {
			r, err := d.startRunner(ctx, key, members, plan.sources[key])
			if err != nil {
				errs = append(errs, err)
				continue
			}
			d.runners[key] = r
			continue
		}
		if r.setMembers(members) {
			r.requestRematch()
		}
		if triggerAll || (!key.UsesDefaultCredentials() && changed[key.Secret]) {
			r.loop.Trigger()
		}
	}
	return errors.Join(errs...)
}

// readTargets decodes and validates the listed Upstreams that are new or changed since the
// previous regroup (UID and resourceVersion) and reuses the others, so that one large stored
// Upstream is validated once per change, not on every regroup triggered by any Upstream or
// Secret. It returns the EC2 Upstreams and how many objects it decoded.
func (d *Discoverer) readTargets(list *unstructured.UnstructuredList) (map[types.NamespacedName]*Target, int) {
	targets := make(map[types.NamespacedName]*Target, len(list.Items))
	notEC2 := map[types.UID]string{}
	decoded := 0
	for i := range list.Items {
		obj := &list.Items[i]
		key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
		uid, rv := obj.GetUID(), obj.GetResourceVersion()
		if rv != "" {
			if old := d.targets[key]; old != nil && old.UID == uid && old.resourceVersion == rv {
				targets[key] = old
				continue
			}
			if seen, ok := d.notEC2[uid]; ok && seen == rv {
				notEC2[uid] = rv
				continue
			}
		}
		decoded++
		t, err := NewTarget(obj, d.opts.DefaultPortTag)
		if err != nil {
			if !errors.Is(err, ec2.ErrNotEC2) && !errors.Is(err, ec2.ErrNotUpstream) {
				d.deps.Log.Error(err, "cannot read upstream", "upstream", key.String())
			}
			notEC2[uid] = rv
			continue
		}
		targets[t.Key()] = t
	}
	d.notEC2 = notEC2
	return targets, decoded
}

// credentialUses returns the refusal of every valid target that may not use the credentials it
// names (see credentialUse).
func (d *Discoverer) credentialUses(ctx context.Context, targets map[types.NamespacedName]*Target) map[types.NamespacedName]*Refusal {
	out := map[types.NamespacedName]*Refusal{}
	for key, t := range targets {
		if t.Invalid != "" {
			continue
		}
		if r := d.credentialUse(ctx, t); r != nil {
			out[key] = r
		}
	}
	return out
}

// applyRefusals stops publication for the refused Upstreams, deletes what was published for
// them (they may have been discovered before the secret's owner withdrew the namespace, or by a
// discoverer without this check), and says why in their annotation, report and metric. Work
// already done for an unchanged refusal is not repeated; a failed write is retried on the next
// regroup.
func (d *Discoverer) applyRefusals(ctx context.Context, targets map[types.NamespacedName]*Target, refusals map[types.NamespacedName]*Refusal) (int, error) {
	uids := make(map[types.UID]bool, len(refusals))
	for key := range refusals {
		uids[targets[key].UID] = true
	}
	d.refusedMu.Lock()
	d.refusedUIDs = uids
	d.refusedMu.Unlock()

	for key := range d.refusalsDone {
		if refusals[key] == nil {
			delete(d.refusalsDone, key)
			d.deps.Metrics.refused.DeletePartialMatch(map[string]string{"namespace": key.Namespace, "upstream": key.Name})
		}
	}
	writes := 0
	var errs []error
	for _, key := range sortedKeys(refusals) {
		r, t := refusals[key], targets[key]
		if !d.ownsUpstream(key) {
			continue
		}
		done := string(t.UID) + "|" + r.String()
		if d.refusalsDone[key] == done {
			continue
		}
		d.deps.Metrics.refusedUpstream(key.Namespace, key.Name, r)
		var werrs []error
		if d.publisher != nil {
			w, err := d.publisher.DeleteFor(ctx, key.Namespace, t.UID)
			writes += w
			werrs = append(werrs, err)
		}
		st := Status{LastError: r.String(), Refusal: r}
		w, err := d.annotator.Write(ctx, key, t.UID, st)
		writes += w
		werrs = append(werrs, err)
		if d.deps.Reports != nil {
			w, err := d.deps.Reports.Write(ctx, t, st)
			writes += w
			werrs = append(werrs, err)
		}
		if err := errors.Join(werrs...); err != nil {
			errs = append(errs, fmt.Errorf("refused upstream %s: %w", key, err))
			continue
		}
		d.refusalsDone[key] = done
		d.deps.Log.Info("upstream refused: not discovered with the credentials it names; deleted what was published for it",
			"upstream", key.String(), "code", r.Code, "reason", r.Message)
	}
	return writes, errors.Join(errs...)
}

// refusedUID reports, under the refusal read lock the caller holds, whether uid is refused.
func (d *Discoverer) refusedUID(uid types.UID) bool { return d.refusedUIDs[uid] }

// awsRequest builds the AWS client request of a group, reading its secret from the cache.
func (d *Discoverer) awsRequest(ctx context.Context, key GroupKey) (awsclients.Request, error) {
	req := awsclients.Request{Region: key.Region, RoleARN: key.RoleARN}
	if key.UsesDefaultCredentials() {
		return req, nil
	}
	s := &corev1.Secret{}
	if err := d.deps.Reader.Get(ctx, key.Secret, s); err != nil {
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

// listing is one group's successful listing.
type listing struct {
	index *Index
	pages int
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

	// Bookkeeping of the current attempt (loop goroutine only, read by its update).
	calls   atomic.Int64
	pages   int
	clients *awsclients.Clients

	stale atomic.Bool

	mu        sync.Mutex // serializes updates and re-matches
	last      *Result[*listing]
	lastAudit GroupAudit
	// failing holds, by Upstream UID, the members whose Service or EndpointSlices could not be
	// written (under mu).
	failing map[types.UID]*publishFailure
}

// publishBackoff is interval·2ⁿ capped at maxBackoff (without overflowing).
func publishBackoff(interval, maxBackoff time.Duration, n int) time.Duration {
	d := interval
	for i := 0; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
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

// refresh lists the group's running instances (one paginated DescribeInstances). A panic in it
// becomes the attempt's error: one group's bad listing cannot stop the others.
func (r *groupRunner) refresh(ctx context.Context) (l *listing, err error) {
	defer func() {
		if p := recover(); p != nil {
			l, err = nil, fmt.Errorf("internal error listing group %s: %v", r.key, p)
		}
	}()
	return r.list(ctx)
}

func (r *groupRunner) list(ctx context.Context) (*listing, error) {
	r.calls.Store(0)
	r.pages = 0
	r.clients = nil
	req, err := r.d.awsRequest(ctx, r.key)
	if err != nil {
		return nil, err
	}
	c, err := r.d.deps.AWS.Get(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("AWS clients for group %s: %w", r.key, err)
	}
	r.clients = c
	insts, pages, err := ec2api.ListRunningInstances(ctx, c.EC2, nil, countEC2Attempts(r.d.deps.Metrics, &r.calls))
	r.pages = pages
	if err != nil {
		return nil, fmt.Errorf("list running instances in %s with %s: %w", r.key.Region, c.Key.CredentialSource(), err)
	}
	return &listing{index: NewIndex(dedupe(insts)), pages: pages}, nil
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

// update audits, matches, publishes and annotates after every refresh attempt.
func (r *groupRunner) update(ctx context.Context, res Result[*listing]) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			r.d.deps.Log.Error(fmt.Errorf("panic: %v", p), "internal error publishing a credential group; the next refresh tries again", "group", r.key.String())
		}
	}()
	r.last = &res
	actx, cancel := context.WithTimeout(ctx, auditTimeout)
	r.lastAudit = r.d.deps.Auditor.Audit(actx, r.clients, r.key.Region, res.Err)
	cancel()
	rep := r.publish(ctx, res, false)
	rep.Pages, rep.Calls = r.pages, int(r.calls.Load())

	m := r.d.deps.Metrics
	m.refreshed(r.key.String(), res.Err == nil, r.d.opts.Loop.Clock.Since(res.Started).Seconds())
	if res.Err == nil {
		m.listing(r.key.String(), res.Value.pages, res.Value.index.Len())
	}
	if was := r.stale.Swap(res.Err != nil); was != (res.Err != nil) {
		if was {
			r.d.stale.Add(-1)
		} else {
			r.d.stale.Add(1)
		}
	}
	m.staleGroups.Set(float64(r.d.stale.Load()))

	log := r.d.deps.Log.WithValues("group", r.key.String(), "seq", res.Seq, "pages", rep.Pages, "calls", rep.Calls,
		"instances", rep.Instances, "upstreams", rep.Upstreams, "writes", rep.Writes)
	switch {
	case res.Err != nil:
		log.Error(res.Err, "refresh failed; keeping the last good endpoints, marked stale", "failures", res.Failures, "hadListing", res.HasValue)
	case rep.PublishErr != nil:
		log.Error(rep.PublishErr, "refreshed, but publishing failed")
	default:
		log.V(1).Info("refreshed")
	}
	if r.d.opts.Hooks.OnRefresh != nil {
		r.d.opts.Hooks.OnRefresh(rep)
	}
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
			rep := r.publish(uctx, *r.last, true)
			cancel()
			if ctx.Err() == nil && r.d.opts.Hooks.OnRefresh != nil {
				r.d.opts.Hooks.OnRefresh(rep)
			}
		}
		r.mu.Unlock()
	}
}

// publish matches every Upstream of the group against the listing in res (the last good one),
// publishes endpoints, writes the annotations and, for a discover-from-tags group after a good
// listing, syncs the generated Upstreams.
func (r *groupRunner) publish(ctx context.Context, res Result[*listing], rematch bool) RefreshReport {
	members := *r.members.Load()
	rep := RefreshReport{
		Group: r.key, Seq: res.Seq, Rematch: rematch, Started: res.Started, Finished: res.Finished,
		Err: res.Err, Stale: res.Err != nil, Upstreams: len(members),
	}
	var ix *Index
	var sels []Selection
	var overlaps [][]int32
	if res.HasValue {
		ix = res.Value.index
		rep.Instances = ix.Len()
		sels = ix.SelectAll(members)
		overlaps = Overlaps(ix.Len(), sels)
	}
	var staleSince time.Time
	if res.Err != nil {
		staleSince = res.StaleSince
	}
	var errs []error
	for i, t := range members {
		var sel Selection
		var overlap []int32
		if ix != nil {
			sel, overlap = sels[i], overlaps[i]
		}
		w, err := r.publishMember(ctx, res, t, ix, sel, overlap, staleSince)
		rep.Writes += w
		errs = append(errs, err)
	}
	if !rematch && res.Err == nil && r.tagSource != nil {
		w, err := r.d.generator.Sync(ctx, *r.tagSource, r.key, ix)
		rep.Writes += w
		errs = append(errs, err)
	}
	rep.PublishErr = errors.Join(errs...)
	return rep
}

// publishMember publishes, annotates and reports one member of the group, unless the regroup
// refused it meanwhile (checked under the discoverer's refusal lock, held for the whole
// publication so that a refusal's cleanup cannot be undone by it).
func (r *groupRunner) publishMember(ctx context.Context, res Result[*listing], t *Target, ix *Index, sel Selection, overlap []int32, staleSince time.Time) (int, error) {
	r.d.refusedMu.RLock()
	defer r.d.refusedMu.RUnlock()
	if r.d.refusedUID(t.UID) {
		return 0, nil
	}
	st := Status{Group: r.key.String(), LastError: ErrorSummary(res.Err), Stale: res.Err != nil}
	if !staleSince.IsZero() {
		st.StaleSince = staleSince.UTC().Format(time.RFC3339)
	}
	iam := r.lastAudit.IAM
	st.IAM = &iam
	v := r.lastAudit.Verdict(t.Upstream)
	st.Consistency = v.Consistency
	for _, p := range v.Problems {
		st.IAMCodes = append(st.IAMCodes, p.Code)
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
	if ix != nil {
		eps, skips := BuildEndpoints(t, ix, sel.Exact)
		fillStatus(&st, ix, sel, overlap, eps, skips)
		if r.d.publisher != nil && !backingOff {
			w, perr = r.d.publisher.Sync(ctx, t, eps, staleSince)
		}
	} else if r.d.publisher != nil && !backingOff {
		w, perr = r.d.publisher.MarkStale(ctx, t, staleSince)
	}
	writes += w
	switch {
	case backingOff:
	case perr != nil && ctx.Err() == nil:
		if f == nil {
			f = &publishFailure{fingerprint: t.fingerprint}
		}
		f.failures++
		f.next = now.Add(publishBackoff(r.d.opts.Loop.Interval, r.d.opts.Loop.MaxBackoff, f.failures))
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
	w, aerr := r.d.annotator.Write(ctx, t.Key(), t.UID, st)
	writes += w
	errs = append(errs, aerr)
	if r.d.deps.Reports != nil {
		w, rerr := r.d.deps.Reports.Write(ctx, t, st)
		writes += w
		errs = append(errs, rerr)
	}
	r.d.deps.Metrics.upstream(t.Upstream.Namespace, t.Upstream.Name, &st)
	if f != nil {
		r.d.deps.Metrics.publishFailing(t.Upstream.Namespace, t.Upstream.Name, f.failures)
	}
	return writes, errors.Join(errs...)
}

// fillStatus puts a selection's counts and examples into a status.
func fillStatus(st *Status, ix *Index, sel Selection, overlap []int32, eps []Endpoint, skips []Skip) {
	st.Count = len(eps)
	st.Matched = len(sel.Exact)
	st.Skipped = len(skips)
	st.SkippedInstances = skips[:min(len(skips), maxExamples)]
	st.skippedByReason = map[string]int{}
	for _, s := range skips {
		st.skippedByReason[s.Reason]++
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
