package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels and annotations on what the discoverer publishes.
const (
	// ManagedBy is the value of the managed-by labels. (A label value cannot hold a "/", so the
	// discoverer is named in domain form, like Kubernetes' endpointslice-controller.k8s.io.)
	ManagedBy = "discoverer.ec2guard.io"
	// LabelServiceManagedBy marks the Services the discoverer owns.
	LabelServiceManagedBy = "app.kubernetes.io/managed-by"
	// LabelUpstreamUID ties a Service or EndpointSlice to its Upstream.
	LabelUpstreamUID = "ec2guard.io/upstream-uid"
	// AnnotationUpstream names the Upstream (namespace/name) on its Service.
	AnnotationUpstream = "ec2guard.io/upstream"
	// AnnotationStaleSince is set on the Service while the Upstream's credential group fails to
	// refresh: the endpoints are the last good ones, listed before that time.
	AnnotationStaleSince = "ec2guard.io/stale-since"
	// ServicePortName names the one port of the Service and of every EndpointSlice; with a port
	// tag, slices of different ports share the name so kube-proxy maps the Service port to each
	// instance's own port.
	ServicePortName = "tcp"
	// MaxEndpointsPerSlice is where slices are split (the EndpointSlice controller's default).
	MaxEndpointsPerSlice = 100
)

// Service types (--service-type).
const (
	// ServiceHeadless publishes headless Services (clusterIP: None): no service IP and no
	// kube-proxy rules per Upstream; DNS answers with the endpoints' addresses. The default.
	ServiceHeadless = "headless"
	// ServiceClusterIP publishes ClusterIP Services (one service IP each, kube-proxy rules on
	// every node).
	ServiceClusterIP = "clusterip"
)

// Publisher writes, per EC2 Upstream, a selector-less Service and the discovery.k8s.io/v1
// EndpointSlices listing its instances, owned by the Upstream. It compares what it wants with
// what the cache holds and writes only the differences, so an unchanged refresh writes nothing.
// It reads the cache without deep copies (every refresh reads every Upstream's objects) and so
// never modifies what it read: merges and creates write copies.
type Publisher struct {
	reader    client.Reader // the manager's cache (holds only the discoverer's objects)
	apiReader client.Reader // uncached, used to resolve conflicts
	writer    client.Writer
	metrics   *Metrics
	zoneHints bool
	headless  bool
	log       logr.Logger
}

// NewPublisher returns a publisher. zoneHints adds hints.forZones (the instance's AZ) to every
// endpoint besides its zone; serviceType is ServiceHeadless ("" too) or ServiceClusterIP.
func NewPublisher(reader, apiReader client.Reader, writer client.Writer, m *Metrics, zoneHints bool, serviceType string, log logr.Logger) *Publisher {
	return &Publisher{reader: reader, apiReader: apiReader, writer: writer, metrics: m, zoneHints: zoneHints,
		headless: serviceType != ServiceClusterIP, log: log}
}

// ownerRef makes the Upstream the controller owner, so Kubernetes' garbage collector deletes
// what was published for it with it.
func ownerRef(t *Target) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: UpstreamGVK().GroupVersion().String(),
		Kind:       UpstreamGVK().Kind,
		Name:       t.Upstream.Name,
		UID:        t.UID,
		Controller: ptr.To(true),
	}
}

// DesiredService is the Service for t, headless or not; staleSince, when not zero, marks its
// endpoints stale.
func DesiredService(t *Target, staleSince time.Time, headless bool) *corev1.Service {
	ann := map[string]string{AnnotationUpstream: t.Key().String()}
	if !staleSince.IsZero() {
		ann[AnnotationStaleSince] = staleSince.UTC().Format(time.RFC3339)
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            ServiceName(t.Upstream.Name),
			Namespace:       t.Upstream.Namespace,
			Labels:          map[string]string{LabelServiceManagedBy: ManagedBy, LabelUpstreamUID: string(t.UID)},
			Annotations:     ann,
			OwnerReferences: []metav1.OwnerReference{ownerRef(t)},
		},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{
				Name: ServicePortName, Protocol: corev1.ProtocolTCP, Port: t.Port(), TargetPort: intstr.FromInt32(t.Port()),
			}},
		},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return svc
}

// isHeadless reports whether a Service is headless.
func isHeadless(s *corev1.Service) bool { return s.Spec.ClusterIP == corev1.ClusterIPNone }

// DesiredSlices are the EndpointSlices for t's endpoints: grouped by port (ascending), each group
// sorted by instance ID and split every MaxEndpointsPerSlice endpoints, named
// "<service>-<port>-<n>". The same endpoints always give the same slices. Each endpoint's
// hostname is its instance ID, its zone the instance's availability zone.
func DesiredSlices(t *Target, eps []Endpoint, zoneHints bool) []*discoveryv1.EndpointSlice {
	byPort := map[int32][]Endpoint{}
	for _, ep := range eps {
		byPort[ep.Port] = append(byPort[ep.Port], ep)
	}
	svc := ServiceName(t.Upstream.Name)
	var out []*discoveryv1.EndpointSlice
	for _, port := range slices.Sorted(maps.Keys(byPort)) {
		list := byPort[port]
		slices.SortFunc(list, func(a, b Endpoint) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
		for n := 0; len(list) > 0; n++ {
			chunk := list[:min(MaxEndpointsPerSlice, len(list))]
			list = list[len(chunk):]
			out = append(out, desiredSlice(t, svc, port, n, chunk, zoneHints))
		}
	}
	return out
}

func desiredSlice(t *Target, svc string, port int32, n int, eps []Endpoint, zoneHints bool) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      SliceName(svc, port, n),
			Namespace: t.Upstream.Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc,
				discoveryv1.LabelManagedBy:   ManagedBy,
				LabelUpstreamUID:             string(t.UID),
			},
			OwnerReferences: []metav1.OwnerReference{ownerRef(t)},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(ServicePortName), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port)}},
		Endpoints:   make([]discoveryv1.Endpoint, 0, len(eps)),
	}
	for _, ep := range eps {
		e := discoveryv1.Endpoint{
			Addresses:  []string{ep.Address},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		}
		if len(validation.IsDNS1123Label(ep.InstanceID)) == 0 {
			e.Hostname = ptr.To(ep.InstanceID) // names the instance behind the address
		}
		if ep.Zone != "" {
			e.Zone = ptr.To(ep.Zone)
			if zoneHints {
				e.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: ep.Zone}}}
			}
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

// Sync makes the Service and EndpointSlices of t match eps. It returns the number of API writes.
func (p *Publisher) Sync(ctx context.Context, t *Target, eps []Endpoint, staleSince time.Time) (int, error) {
	desired := DesiredService(t, staleSince, p.headless)
	writes, err := p.syncService(ctx, desired)
	if err != nil {
		return writes, err
	}
	w, err := p.deleteRenamedServices(ctx, t, desired.Name)
	writes += w
	if err != nil {
		return writes, err
	}
	w, err = p.syncSlices(ctx, t, DesiredSlices(t, eps, p.zoneHints))
	return writes + w, err
}

// deleteRenamedServices deletes the Services published for t under another name than name (its
// Service name changed with a newer naming rule).
func (p *Publisher) deleteRenamedServices(ctx context.Context, t *Target, name string) (int, error) {
	var svcs corev1.ServiceList
	if err := p.reader.List(ctx, &svcs, client.InNamespace(t.Upstream.Namespace), client.MatchingLabels{LabelUpstreamUID: string(t.UID)}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("list services of upstream %s: %w", t.Key(), err)
	}
	writes := 0
	var errs []error
	for i := range svcs.Items {
		if svcs.Items[i].Name == name || !ours(&svcs.Items[i]) {
			continue
		}
		w, err := p.delete(ctx, "services", &svcs.Items[i])
		writes += w
		errs = append(errs, err)
	}
	return writes, errors.Join(errs...)
}

// MarkStale sets or clears the stale mark on t's Service, if it exists, and leaves its
// EndpointSlices alone (used while no listing of the group has succeeded yet).
func (p *Publisher) MarkStale(ctx context.Context, t *Target, staleSince time.Time) (int, error) {
	desired := DesiredService(t, staleSince, p.headless)
	observed := &corev1.Service{}
	if err := p.reader.Get(ctx, client.ObjectKeyFromObject(desired), observed, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("get service %s: %w", client.ObjectKeyFromObject(desired), err)
	}
	if observed.Labels[LabelUpstreamUID] != string(t.UID) {
		return 0, nil
	}
	return p.syncService(ctx, desired)
}

func (p *Publisher) syncService(ctx context.Context, desired *corev1.Service) (int, error) {
	key := client.ObjectKeyFromObject(desired)
	observed := &corev1.Service{}
	err := p.reader.Get(ctx, key, observed, client.UnsafeDisableDeepCopy)
	switch {
	case apierrors.IsNotFound(err):
		observed = nil
	case err != nil:
		return 0, fmt.Errorf("get service %s: %w", key, err)
	}
	writes := 0
	if observed != nil && ours(observed) && isHeadless(observed) != isHeadless(desired) {
		// clusterIP is immutable: switching between headless and ClusterIP recreates the Service
		// (its EndpointSlices stay).
		w, err := p.delete(ctx, "services", observed)
		writes += w
		if err != nil {
			return writes, err
		}
		observed = nil
	}
	w, err := upsert(ctx, p, "services", desired, observed, func() *corev1.Service { return &corev1.Service{} },
		serviceUpToDate, mergeService)
	return writes + w, err
}

func (p *Publisher) syncSlices(ctx context.Context, t *Target, desired []*discoveryv1.EndpointSlice) (int, error) {
	var list discoveryv1.EndpointSliceList
	if err := p.reader.List(ctx, &list, client.InNamespace(t.Upstream.Namespace), client.MatchingLabels{LabelUpstreamUID: string(t.UID)}, client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("list endpointslices of upstream %s: %w", t.Key(), err)
	}
	observed := map[string]*discoveryv1.EndpointSlice{}
	for i := range list.Items {
		observed[list.Items[i].Name] = &list.Items[i]
	}
	writes := 0
	var errs []error
	for _, d := range desired {
		w, err := upsert(ctx, p, "endpointslices", d, observed[d.Name], func() *discoveryv1.EndpointSlice { return &discoveryv1.EndpointSlice{} },
			sliceUpToDate, mergeSlice)
		writes += w
		if err != nil {
			errs = append(errs, err)
		}
		delete(observed, d.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(observed)) {
		w, err := p.delete(ctx, "endpointslices", observed[name])
		writes += w
		if err != nil {
			errs = append(errs, err)
		}
	}
	return writes, errors.Join(errs...)
}

// DeleteFor deletes the Service and EndpointSlices published for the Upstream with uid in
// namespace (the Upstream is gone: Kubernetes' garbage collector would do the same, but the
// discoverer does not wait for it). It returns the number of API writes.
func (p *Publisher) DeleteFor(ctx context.Context, namespace string, uid types.UID) (int, error) {
	sel := client.MatchingLabels{LabelUpstreamUID: string(uid)}
	var slicesList discoveryv1.EndpointSliceList
	var svcs corev1.ServiceList
	if err := p.reader.List(ctx, &slicesList, client.InNamespace(namespace), sel); err != nil {
		return 0, fmt.Errorf("list endpointslices of upstream uid %s: %w", uid, err)
	}
	if err := p.reader.List(ctx, &svcs, client.InNamespace(namespace), sel); err != nil {
		return 0, fmt.Errorf("list services of upstream uid %s: %w", uid, err)
	}
	return p.deleteAll(ctx, slicesList.Items, svcs.Items)
}

// DeleteOrphans deletes every published Service and EndpointSlice whose Upstream is not among
// live (Upstreams deleted while no discoverer ran; envtest-like clusters have no garbage
// collector). It returns the number of API writes.
func (p *Publisher) DeleteOrphans(ctx context.Context, live map[types.UID]bool) (int, error) {
	var slicesList discoveryv1.EndpointSliceList
	var svcs corev1.ServiceList
	if err := p.reader.List(ctx, &slicesList, client.MatchingLabels{discoveryv1.LabelManagedBy: ManagedBy}); err != nil {
		return 0, fmt.Errorf("list published endpointslices: %w", err)
	}
	if err := p.reader.List(ctx, &svcs, client.MatchingLabels{LabelServiceManagedBy: ManagedBy}); err != nil {
		return 0, fmt.Errorf("list published services: %w", err)
	}
	orphanSlices := slices.DeleteFunc(slicesList.Items, func(s discoveryv1.EndpointSlice) bool { return live[types.UID(s.Labels[LabelUpstreamUID])] })
	orphanSvcs := slices.DeleteFunc(svcs.Items, func(s corev1.Service) bool { return live[types.UID(s.Labels[LabelUpstreamUID])] })
	return p.deleteAll(ctx, orphanSlices, orphanSvcs)
}

func (p *Publisher) deleteAll(ctx context.Context, sl []discoveryv1.EndpointSlice, svcs []corev1.Service) (int, error) {
	writes := 0
	var errs []error
	for i := range sl {
		w, err := p.delete(ctx, "endpointslices", &sl[i])
		writes += w
		errs = append(errs, err)
	}
	for i := range svcs {
		w, err := p.delete(ctx, "services", &svcs[i])
		writes += w
		errs = append(errs, err)
	}
	return writes, errors.Join(errs...)
}

func (p *Publisher) delete(ctx context.Context, resource string, obj client.Object) (int, error) {
	err := p.writer.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())})
	p.metrics.KubeWrite(resource, "delete", err)
	if err != nil && !apierrors.IsNotFound(err) {
		return 1, fmt.Errorf("delete %s %s: %w", resource, client.ObjectKeyFromObject(obj), err)
	}
	p.log.V(1).Info("deleted", "resource", resource, "object", client.ObjectKeyFromObject(obj))
	return 1, nil
}

// ErrNotOurs says an object the discoverer wants to write exists and belongs to someone else.
var ErrNotOurs = errors.New("exists and is not managed by the ec2guard discoverer")

// upsert creates desired when observed is nil and updates observed when it differs. A conflict
// (stale cache, or a concurrent writer) is resolved once with a fresh read from the API server.
func upsert[T client.Object](ctx context.Context, p *Publisher, resource string, desired, observed T, empty func() T,
	upToDate func(desired, observed T) bool, merge func(desired, observed T) T,
) (int, error) {
	key := client.ObjectKeyFromObject(desired)
	writes := 0
	for attempt := 0; ; attempt++ {
		var err error
		verb := "create"
		if isNil(observed) {
			err = p.writer.Create(ctx, desired.DeepCopyObject().(T))
		} else {
			if !ours(observed) {
				return writes, fmt.Errorf("%s %s %w", resource, key, ErrNotOurs)
			}
			if upToDate(desired, observed) {
				return writes, nil
			}
			verb = "update"
			err = p.writer.Update(ctx, merge(desired, observed))
		}
		writes++
		p.metrics.KubeWrite(resource, verb, err)
		if err == nil {
			p.log.V(1).Info("wrote", "resource", resource, "verb", verb, "object", key)
			return writes, nil
		}
		if attempt > 0 || !(apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) || apierrors.IsNotFound(err)) {
			return writes, fmt.Errorf("%s %s %s: %w", verb, resource, key, err)
		}
		fresh := empty()
		switch gerr := p.apiReader.Get(ctx, key, fresh); {
		case apierrors.IsNotFound(gerr):
			var zero T
			observed = zero
		case gerr != nil:
			return writes, fmt.Errorf("%s %s %s: %w (and re-reading it failed: %v)", verb, resource, key, err, gerr)
		default:
			observed = fresh
		}
	}
}

func isNil[T client.Object](o T) bool {
	var zero T
	return any(o) == any(zero)
}

// ours reports whether an object carries one of the discoverer's managed-by labels.
func ours(o client.Object) bool {
	l := o.GetLabels()
	return l[LabelServiceManagedBy] == ManagedBy || l[discoveryv1.LabelManagedBy] == ManagedBy
}

// hasEntries reports whether every entry of want is in have.
func hasEntries(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

func serviceUpToDate(d, o *corev1.Service) bool {
	if !hasEntries(o.Labels, d.Labels) || !hasEntries(o.Annotations, d.Annotations) {
		return false
	}
	if _, stale := d.Annotations[AnnotationStaleSince]; !stale {
		if _, has := o.Annotations[AnnotationStaleSince]; has {
			return false
		}
	}
	if !equality.Semantic.DeepEqual(o.OwnerReferences, d.OwnerReferences) || o.Spec.Type != d.Spec.Type || len(o.Spec.Selector) > 0 {
		return false
	}
	if len(o.Spec.Ports) != len(d.Spec.Ports) {
		return false
	}
	for i := range d.Spec.Ports {
		dp, op := d.Spec.Ports[i], o.Spec.Ports[i]
		if dp.Name != op.Name || dp.Protocol != op.Protocol || dp.Port != op.Port || dp.TargetPort != op.TargetPort {
			return false
		}
	}
	return true
}

func mergeService(d, o *corev1.Service) *corev1.Service {
	u := o.DeepCopy()
	u.Labels = mergeMap(u.Labels, d.Labels)
	u.Annotations = mergeMap(u.Annotations, d.Annotations)
	if _, stale := d.Annotations[AnnotationStaleSince]; !stale {
		delete(u.Annotations, AnnotationStaleSince)
	}
	u.OwnerReferences = d.OwnerReferences
	u.Spec.Type = d.Spec.Type
	u.Spec.Selector = nil
	u.Spec.Ports = d.Spec.Ports
	return u
}

func sliceUpToDate(d, o *discoveryv1.EndpointSlice) bool {
	return hasEntries(o.Labels, d.Labels) &&
		equality.Semantic.DeepEqual(o.OwnerReferences, d.OwnerReferences) &&
		o.AddressType == d.AddressType &&
		equality.Semantic.DeepEqual(o.Ports, d.Ports) &&
		equality.Semantic.DeepEqual(o.Endpoints, d.Endpoints)
}

func mergeSlice(d, o *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	u := o.DeepCopy()
	u.Labels = mergeMap(u.Labels, d.Labels)
	u.OwnerReferences = d.OwnerReferences
	u.AddressType = d.AddressType
	u.Ports = d.Ports
	u.Endpoints = d.Endpoints
	return u
}

func mergeMap(dst, src map[string]string) map[string]string {
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	maps.Copy(dst, src)
	return dst
}
