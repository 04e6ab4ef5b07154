package discovery

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// UpstreamGVK returns the group, version and kind of Gloo's Upstream, watched through the
// dynamic (unstructured) client: the discoverer does not depend on Gloo's Go module.
func UpstreamGVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: ec2.GlooGroup, Version: "v1", Kind: ec2.UpstreamKind}
}

// NewUpstreamObject returns an empty unstructured Upstream (for informers and Gets).
func NewUpstreamObject() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(UpstreamGVK())
	return u
}

// NewUpstreamList returns an empty unstructured Upstream list.
func NewUpstreamList() *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(UpstreamGVK().GroupVersion().WithKind(ec2.UpstreamKind + "List"))
	return l
}

// Target is one EC2 Upstream as the discoverer sees it: decoded by pkg/ec2 (both shapes),
// validated, with its compiled matcher and the port tag in effect.
type Target struct {
	Upstream *ec2.Upstream
	UID      types.UID
	// Matcher is nil when the Upstream is invalid.
	Matcher *ec2.Matcher
	// PortTag is the instance tag key that gives each instance's port: the Upstream's
	// ec2guard.io/port-tag annotation, else the discoverer's --port-tag ("" for none).
	PortTag string
	// Generated is true for Upstreams created by discover-from-tags.
	Generated bool
	// Invalid holds the validation errors that keep the Upstream out of discovery ("" when valid).
	Invalid string

	fingerprint     string
	resourceVersion string
}

// NewTarget decodes an Upstream. It returns ec2.ErrNotUpstream / ec2.ErrNotEC2 (wrapped) for
// objects the discoverer leaves alone. An Upstream that fails validation is returned with Invalid
// set, so that the discoverer can say so on it.
func NewTarget(obj *unstructured.Unstructured, defaultPortTag string) (*Target, error) {
	up, err := ec2.FromUnstructured(obj)
	if err != nil {
		return nil, err
	}
	t := &Target{
		Upstream:  up,
		UID:       obj.GetUID(),
		Generated: obj.GetLabels()[LabelGenerated] == "true",
		PortTag:   defaultPortTag,

		resourceVersion: obj.GetResourceVersion(),
	}
	if pt, ok := up.PortTag(); ok {
		t.PortTag = pt
	}
	if errs, _ := up.Validate(); len(errs) > 0 {
		msgs := make([]string, 0, len(errs))
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		t.Invalid = strings.Join(msgs, "; ")
	} else if t.Matcher, err = up.Spec.Matcher(); err != nil {
		t.Invalid = err.Error()
	}
	fp, err := json.Marshal(struct {
		UID       types.UID
		Spec      ec2.Spec
		PortTag   string
		Generated bool
		Invalid   string
	}{t.UID, up.Spec, t.PortTag, t.Generated, t.Invalid})
	if err != nil {
		return nil, fmt.Errorf("fingerprint of upstream %s: %w", up.Key(), err)
	}
	t.fingerprint = string(fp)
	return t, nil
}

// Key is the Upstream's namespace and name.
func (t *Target) Key() types.NamespacedName { return t.Upstream.NamespacedName() }

// Group is the credential group the Upstream belongs to.
func (t *Target) Group() GroupKey {
	k := GroupKey{Region: t.Upstream.Spec.Region, RoleARN: t.Upstream.Spec.RoleARN}
	if s, ok := t.Upstream.SecretName(); ok {
		k.Secret = s
	}
	return k
}

// Port is the Upstream's port (spec.port, default 80).
func (t *Target) Port() int32 { return int32(t.Upstream.Spec.EffectivePort()) }

// HasFilters reports whether the Upstream has at least one filter.
func (t *Target) HasFilters() bool { return len(t.Upstream.Spec.Filters) > 0 }

// SameDiscovery reports whether two versions of an Upstream discover the same way (spec, port
// tag, generated label, validity): changes elsewhere — the discoverer's own annotation included —
// need no new matching.
func (t *Target) SameDiscovery(o *Target) bool { return o != nil && t.fingerprint == o.fingerprint }
