package ec2

import (
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Gloo's API group and kind for Upstreams, and the annotations ec2guard reads.
const (
	GlooGroup    = "gloo.solo.io"
	UpstreamKind = "Upstream"

	// AnnotationPortTag names the instance tag whose value gives each instance's port.
	AnnotationPortTag = "ec2guard.io/port-tag"

	// DefaultPort is used when spec.port is unset (or 0).
	DefaultPort uint32 = 80

	// MaxFilters, MaxTagKeyLength and MaxTagValueLength are the AWS limits the filter rules enforce.
	MaxFilters        = 50
	MaxTagKeyLength   = 128
	MaxTagValueLength = 256
)

// Shape says where the EC2 spec was written.
type Shape int

const (
	// ShapeV1 is the current shape, spec.awsEc2 (Gloo >= 1.0).
	ShapeV1 Shape = iota + 1
	// ShapeLegacy is the pre-1.0 shape, spec.upstreamSpec.awsEc2.
	ShapeLegacy
)

// String returns the shape's path, e.g. "spec.awsEc2".
func (s Shape) String() string { return s.Path().String() }

// Path returns the field path of the awsEc2 block in this shape.
func (s Shape) Path() *field.Path {
	if s == ShapeLegacy {
		return field.NewPath("spec", "upstreamSpec", "awsEc2")
	}
	return field.NewPath("spec", "awsEc2")
}

// Upstream is a Gloo Upstream with an EC2 spec, decoded from either shape.
type Upstream struct {
	Namespace   string
	Name        string
	Annotations map[string]string
	// Shape is where the spec was read from. When both shapes are present, spec.awsEc2 wins (like
	// Gloo >= 1.0) and a finding (EC2G002/EC2G003) says so.
	Shape Shape
	Spec  Spec

	// decoded holds the problems found while decoding (wrong types, unknown fields, both shapes),
	// bounded. Check reports them first.
	decoded findingSet
}

// Spec is the awsEc2 block of an Upstream.
type Spec struct {
	Region string
	// SecretRef is nil when the pod's own AWS identity (SDK default chain) is used.
	SecretRef *SecretRef
	// RoleARN, when set, is assumed with sts:AssumeRole on top of the base credentials.
	RoleARN string
	Filters []Filter
	// PublicIP selects the instance's public IPv4 instead of its private one.
	PublicIP bool
	// Port is the instances' port; 0 means the default 80 (see EffectivePort).
	Port uint32
}

// SecretRef references the Gloo AWS secret.
type SecretRef struct {
	Name      string
	Namespace string
}

// Filter is one tag filter. Exactly one of Key and KVPair must be set (Validate checks it):
// Key: the tag key exists on the instance; KVPair: the tag key has exactly that value.
type Filter struct {
	Key    *string
	KVPair *KVPair
}

// KVPair requires tag Key to have exactly Value.
type KVPair struct {
	Key   string
	Value string
}

// KeyFilter returns a filter requiring tag key k to exist.
func KeyFilter(k string) Filter { return Filter{Key: &k} }

// KVFilter returns a filter requiring tag k to equal v.
func KVFilter(k, v string) Filter { return Filter{KVPair: &KVPair{Key: k, Value: v}} }

// TagKey returns the tag key the filter is about ("" if neither form is set; the KVPair key if both).
func (f Filter) TagKey() string {
	switch {
	case f.KVPair != nil:
		return f.KVPair.Key
	case f.Key != nil:
		return *f.Key
	}
	return ""
}

// IsKV reports whether the filter requires a value (kvPair form).
func (f Filter) IsKV() bool { return f.KVPair != nil }

// wellFormed reports whether exactly one of Key and KVPair is set.
func (f Filter) wellFormed() bool { return (f.Key == nil) != (f.KVPair == nil) }

// equal reports whether two filters are the same requirement.
func (f Filter) equal(g Filter) bool {
	if f.wellFormed() != g.wellFormed() || f.IsKV() != g.IsKV() {
		return false
	}
	if f.IsKV() {
		return *f.KVPair == *g.KVPair && (f.Key == nil) == (g.Key == nil) && (f.Key == nil || *f.Key == *g.Key)
	}
	return (f.Key == nil) == (g.Key == nil) && (f.Key == nil || *f.Key == *g.Key)
}

// String renders the filter the way it is written in YAML, e.g. `key: a` or `kvPair: {key: a, value: b}`.
func (f Filter) String() string {
	switch {
	case f.Key != nil && f.KVPair != nil:
		return "key: " + quoteIfNeeded(*f.Key) + " and kvPair: {key: " + quoteIfNeeded(f.KVPair.Key) + ", value: " + quoteIfNeeded(f.KVPair.Value) + "}"
	case f.Key != nil:
		return "key: " + quoteIfNeeded(*f.Key)
	case f.KVPair != nil:
		return "kvPair: {key: " + quoteIfNeeded(f.KVPair.Key) + ", value: " + quoteIfNeeded(f.KVPair.Value) + "}"
	}
	return "{}"
}

// EffectivePort returns Port, or DefaultPort when Port is 0.
func (s Spec) EffectivePort() uint32 {
	if s.Port == 0 {
		return DefaultPort
	}
	return s.Port
}

// Key returns "namespace/name".
func (u *Upstream) Key() string { return u.Namespace + "/" + u.Name }

// NamespacedName returns the Upstream's namespace and name.
func (u *Upstream) NamespacedName() types.NamespacedName {
	return types.NamespacedName{Namespace: u.Namespace, Name: u.Name}
}

// Path returns the field path of the awsEc2 block as the user wrote it.
func (u *Upstream) Path() *field.Path {
	if u.Shape == 0 {
		return ShapeV1.Path()
	}
	return u.Shape.Path()
}

// SecretName returns the referenced secret's namespace and name, with the namespace defaulted to the
// Upstream's own when empty. ok is false when there is no secretRef.
func (u *Upstream) SecretName() (nn types.NamespacedName, ok bool) {
	if u.Spec.SecretRef == nil {
		return types.NamespacedName{}, false
	}
	ns := u.Spec.SecretRef.Namespace
	if ns == "" {
		ns = u.Namespace
	}
	return types.NamespacedName{Namespace: ns, Name: u.Spec.SecretRef.Name}, true
}

// ParsePortTagValue parses an instance's port-tag value: a decimal port 1–65535 written exactly (no
// sign, spaces or leading zeros beyond "0" itself being invalid). The error says why, for the report.
func ParsePortTagValue(v string) (uint32, error) {
	n, err := strconv.ParseUint(v, 10, 32)
	switch {
	case err != nil:
		return 0, fmt.Errorf("port tag value %s is not a decimal number", quoteShort(v))
	case n < 1 || n > 65535:
		return 0, fmt.Errorf("port tag value %d is not a port 1-65535", n)
	case strconv.FormatUint(n, 10) != v:
		return 0, fmt.Errorf("port tag value %s has leading zeros", quoteShort(v))
	}
	return uint32(n), nil
}

// PortTag returns the ec2guard.io/port-tag annotation, if set.
func (u *Upstream) PortTag() (string, bool) {
	v, ok := u.Annotations[AnnotationPortTag]
	return v, ok
}
