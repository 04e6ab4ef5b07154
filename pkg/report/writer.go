package report

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	openreports "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// GVK returns the group, version and kind of an OpenReports Report.
func GVK() schema.GroupVersionKind {
	return openreports.SchemeGroupVersion.WithKind(reportKind)
}

// metricResource names reports in the discoverer's kube_writes_total metric.
const metricResource = "reports"

// Metrics is what a Writer records: its API writes and whether the CRD is installed (the
// discoverer's metrics implement it).
type Metrics interface {
	KubeWrite(resource, verb string, err error)
	ReportsAvailable(bool)
}

// Writer keeps one Report per EC2 Upstream in the cluster: it is the discoverer's report sink. It writes through the unstructured client (no scheme registration
// needed), only when a report's content changed (Equal), and remembers what it wrote so that an
// unchanged refresh costs neither a write nor a read. When the OpenReports CRD is not installed
// (RESTMapper), it writes nothing, asks again at most once per recheck interval (the refresh
// interval), logs one line each time it finds the CRD still missing, and sets the
// ec2guard_discoverer_reports_available gauge; discovery and publishing go on.
type Writer struct {
	api     client.Reader
	writer  client.Writer
	mapper  meta.RESTMapper
	metrics Metrics
	clock   clock.PassiveClock
	log     logr.Logger
	recheck time.Duration

	mu        sync.Mutex
	checked   bool
	checkedAt time.Time
	enabled   bool
	last      map[types.NamespacedName]*Report
}

// DefaultRecheck is how often a Writer asks again whether the CRD is installed, until
// SetRecheck.
const DefaultRecheck = 30 * time.Second

// SetRecheck sets how often the writer asks again whether a missing CRD was installed (the
// discoverer's refresh interval). Call it before use.
func (w *Writer) SetRecheck(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d > 0 {
		w.recheck = d
	}
}

// NewWriter returns a writer. api reads reports from the API server (uncached: only on change
// or after a restart), mapper tells whether the CRD is installed; metrics may be nil.
func NewWriter(api client.Reader, writer client.Writer, mapper meta.RESTMapper, metrics Metrics, clk clock.PassiveClock, log logr.Logger) *Writer {
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Writer{api: api, writer: writer, mapper: mapper, metrics: metrics, clock: clk, log: log,
		recheck: DefaultRecheck, last: map[types.NamespacedName]*Report{}}
}

// Enabled reports whether the OpenReports CRD is installed. While it is not (or the answer is
// unknown), it asks the RESTMapper again at most once per recheck interval and logs one line
// each time; once it is, it stops asking (a write that finds the CRD gone starts over).
func (w *Writer) Enabled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	if w.checked && (w.enabled || now.Sub(w.checkedAt) < w.recheck) {
		return w.enabled
	}
	_, err := w.mapper.RESTMapping(GVK().GroupKind(), GVK().Version)
	w.checked, w.checkedAt = true, now
	switch {
	case err == nil:
		if !w.enabled {
			w.log.Info("the OpenReports CRD (reports.openreports.io, openreports.io/v1alpha1) is installed; writing consistency reports")
		}
		w.enabled = true
	case meta.IsNoMatchError(err):
		w.enabled = false
		w.log.Info("cannot write consistency reports: the OpenReports CRD (reports.openreports.io, openreports.io/v1alpha1) is not installed; "+
			"discovery and publishing go on; install the CRD (chart value reports.installCRDs=true) or run with --reports=false",
			"recheckEvery", w.recheck.String())
	default:
		w.enabled = false
		w.log.Error(err, "cannot write consistency reports: cannot tell whether the OpenReports CRD is installed; discovery and publishing go on",
			"recheckEvery", w.recheck.String())
	}
	if w.metrics != nil {
		w.metrics.ReportsAvailable(w.enabled)
	}
	return w.enabled
}

// crdGone makes the next Enabled ask again when a write found the CRD missing.
func (w *Writer) crdGone(err error) {
	if !meta.IsNoMatchError(err) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checked, w.enabled = false, false
}

// Write creates or updates the report of the Upstream up (with uid) from its audit st when its
// content changed. It returns the number of API writes.
func (w *Writer) Write(ctx context.Context, up *ec2.Upstream, uid types.UID, st discovered.Status) (int, error) {
	if !w.Enabled() {
		return 0, nil
	}
	want := Build(Input{Upstream: up, UID: uid, Status: st, Now: w.clock.Now()})
	key := types.NamespacedName{Namespace: want.Namespace, Name: want.Name}
	if Equal(w.remembered(key), want) {
		return 0, nil
	}
	cur, err := w.get(ctx, key)
	if err != nil {
		w.crdGone(err)
		return 0, err
	}
	if cur == nil {
		obj, err := toUnstructured(want)
		if err != nil {
			return 0, err
		}
		err = w.writer.Create(ctx, obj)
		w.count("create", err)
		if err != nil {
			return 1, fmt.Errorf("create report %s: %w", key, err)
		}
		w.remember(key, want)
		return 1, nil
	}
	if cur.Labels[LabelManagedBy] != ManagedBy {
		return 0, fmt.Errorf("report %s exists and is not managed by ec2guard (label %s=%s); not taking it over", key, LabelManagedBy, ManagedBy)
	}
	if Equal(cur, want) {
		w.remember(key, cur)
		return 0, nil
	}
	want.ResourceVersion = cur.ResourceVersion
	for k, v := range cur.Labels {
		if _, ours := want.Labels[k]; !ours {
			want.Labels[k] = v
		}
	}
	want.Annotations = cur.Annotations
	obj, err := toUnstructured(want)
	if err != nil {
		return 0, err
	}
	err = w.writer.Update(ctx, obj)
	w.count("update", err)
	if err != nil {
		return 1, fmt.Errorf("update report %s: %w", key, err)
	}
	w.remember(key, want)
	return 1, nil
}

// Delete deletes the report of the Upstream key (when there is one).
func (w *Writer) Delete(ctx context.Context, key types.NamespacedName) (int, error) {
	if !w.Enabled() {
		return 0, nil
	}
	rkey := types.NamespacedName{Namespace: key.Namespace, Name: Name(key.Name)}
	w.forget(rkey)
	cur, err := w.get(ctx, rkey)
	if err != nil || cur == nil || cur.Labels[LabelManagedBy] != ManagedBy {
		return 0, err
	}
	return w.delete(ctx, cur)
}

// DeleteOrphans deletes the reports ec2guard wrote for Upstreams whose UID is not in live.
func (w *Writer) DeleteOrphans(ctx context.Context, live map[types.UID]bool) (int, error) {
	if !w.Enabled() {
		return 0, nil
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(openreports.SchemeGroupVersion.WithKind(reportKind + "List"))
	if err := w.api.List(ctx, list, client.MatchingLabels{LabelManagedBy: ManagedBy}); err != nil {
		return 0, fmt.Errorf("list reports: %w", err)
	}
	writes := 0
	var errs []error
	for i := range list.Items {
		r, err := fromUnstructured(&list.Items[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.Scope != nil && live[r.Scope.UID] {
			continue
		}
		w.forget(types.NamespacedName{Namespace: r.Namespace, Name: r.Name})
		n, err := w.delete(ctx, r)
		writes += n
		errs = append(errs, err)
	}
	return writes, errors.Join(errs...)
}

func (w *Writer) delete(ctx context.Context, r *Report) (int, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(GVK())
	obj.SetNamespace(r.Namespace)
	obj.SetName(r.Name)
	err := w.writer.Delete(ctx, obj, client.Preconditions{UID: &r.UID})
	w.count("delete", err)
	if err != nil && !apierrors.IsNotFound(err) {
		return 1, fmt.Errorf("delete report %s/%s: %w", r.Namespace, r.Name, err)
	}
	return 1, nil
}

// get reads a report from the API server (nil when there is none).
func (w *Writer) get(ctx context.Context, key types.NamespacedName) (*Report, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(GVK())
	if err := w.api.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get report %s: %w", key, err)
	}
	return fromUnstructured(obj)
}

func (w *Writer) count(verb string, err error) {
	if w.metrics != nil {
		w.metrics.KubeWrite(metricResource, verb, err)
	}
}

func (w *Writer) remembered(key types.NamespacedName) *Report {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[key]
}

func (w *Writer) remember(key types.NamespacedName, r *Report) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[key] = r
}

func (w *Writer) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, key)
}

func toUnstructured(r *Report) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(r)
	if err != nil {
		return nil, fmt.Errorf("encode report %s/%s: %w", r.Namespace, r.Name, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(GVK())
	return u, nil
}

func fromUnstructured(u *unstructured.Unstructured) (*Report, error) {
	r := &Report{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r); err != nil {
		return nil, fmt.Errorf("decode report %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return r, nil
}
