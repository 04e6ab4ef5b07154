package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
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
	Write(ctx context.Context, up *ec2.Upstream, uid types.UID, st discovered.Status) (int, error)
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
		AddFunc: func(any) { d.Regroup() },
		UpdateFunc: func(oldObj, newObj any) {
			if upstreamChangeMatters(oldObj, newObj) {
				d.Regroup()
			}
		},
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

// upstreamChangeMatters reports whether an Upstream update may change discovery. The
// discoverer's own annotation writes do not: at fleet scale (1% of the instances retagged per
// interval, ~2,000 annotation patches) regrouping on each of them, listing and deep-copying every
// Upstream, took a third of the discoverer's CPU. Anything else counts: a new generation (spec), labels,
// other annotations (ec2guard.io/port-tag), deletion; an object without a generation always counts.
func upstreamChangeMatters(oldObj, newObj any) bool {
	o, ok1 := oldObj.(*unstructured.Unstructured)
	n, ok2 := newObj.(*unstructured.Unstructured)
	if !ok1 || !ok2 || n.GetGeneration() == 0 {
		return true
	}
	if o.GetUID() != n.GetUID() || o.GetGeneration() != n.GetGeneration() ||
		!maps.Equal(o.GetLabels(), n.GetLabels()) || !o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) {
		return true
	}
	oa, na := o.GetAnnotations(), n.GetAnnotations()
	if len(oa) != len(na) {
		return true
	}
	for k, v := range na {
		if ov, ok := oa[k]; !ok || (ov != v && k != discovered.Annotation) {
			return true
		}
	}
	return false
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
	// Read-only: readTargets copies what it keeps (pkg/ec2 decodes into new values).
	if err := d.deps.Reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
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

	var n tally
	n.add(d.cleanUpRemoved(ctx, removed))
	if first {
		n.add(d.deleteOrphans(ctx, targets))
	}
	n.add(d.annotateInvalid(ctx, targets, d.targets))
	n.add(d.applyRefusals(ctx, targets, refusals))
	n.add(0, d.applyPlan(ctx, plan))
	d.targets = targets
	rep.Groups = len(d.runners)
	d.deps.Metrics.setGroups(len(d.runners), int(d.stale.Load()))
	rep.Writes, rep.Err = n.result()
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
func planGroups(targets map[types.NamespacedName]*Target, refusals map[types.NamespacedName]*discovered.Refusal, tagSources []TagSource) groupPlan {
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
	var n tally
	for _, key := range sortedKeys(removed) {
		if n.stopped(ctx) {
			break
		}
		if !d.ownsUpstream(key) {
			continue
		}
		d.deps.Metrics.forgetUpstream(key.Namespace, key.Name)
		n.add(d.deletePublished(ctx, key, removed[key].UID, true))
		d.deps.Log.Info("upstream removed; deleted what was published for it", "upstream", key.String())
	}
	return n.result()
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
	var n tally
	if d.publisher != nil {
		n.add(d.publisher.DeleteOrphans(ctx, live))
	}
	if d.deps.Reports != nil {
		n.add(d.deps.Reports.DeleteOrphans(ctx, live))
	}
	return n.result()
}

// annotateInvalid says on each invalid Upstream (new or changed since prev) why it is not
// discovered.
func (d *Discoverer) annotateInvalid(ctx context.Context, targets, prev map[types.NamespacedName]*Target) (int, error) {
	var n tally
	for key, t := range targets {
		if t.Invalid == "" || t.SameDiscovery(prev[key]) || !d.ownsUpstream(key) {
			continue
		}
		if n.stopped(ctx) {
			break
		}
		d.deps.Metrics.forgetUpstream(key.Namespace, key.Name)
		n.add(d.writeStatus(ctx, t, discovered.Status{LastError: "invalid upstream, not discovered: " + t.Invalid}))
	}
	return n.result()
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
func (d *Discoverer) credentialUses(ctx context.Context, targets map[types.NamespacedName]*Target) map[types.NamespacedName]*discovered.Refusal {
	out := map[types.NamespacedName]*discovered.Refusal{}
	seen := secretReads{}
	for key, t := range targets {
		if t.Invalid != "" {
			continue
		}
		if r := d.credentialUse(ctx, t, seen); r != nil {
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
func (d *Discoverer) applyRefusals(ctx context.Context, targets map[types.NamespacedName]*Target, refusals map[types.NamespacedName]*discovered.Refusal) (int, error) {
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
			d.deps.Metrics.notRefused(key.Namespace, key.Name)
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
		if err := ctx.Err(); err != nil {
			errs = append(errs, err) // retried on the next regroup (not marked done)
			break
		}
		d.deps.Metrics.refusedUpstream(key.Namespace, key.Name, r)
		var one tally
		one.add(d.deletePublished(ctx, key, t.UID, false))
		one.add(d.writeStatus(ctx, t, discovered.Status{LastError: r.String(), Refusal: r}))
		w, err := one.result()
		writes += w
		if err != nil {
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
