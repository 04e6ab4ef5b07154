package discovery

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// upstreamObj builds an unstructured EC2 Upstream; legacy selects spec.upstreamSpec.awsEc2.
func upstreamObj(ns, name, uid string, legacy bool, awsEc2 map[string]any, ann map[string]string) *unstructured.Unstructured {
	u := NewUpstreamObject()
	u.SetNamespace(ns)
	u.SetName(name)
	u.SetUID(types.UID(uid))
	if ann != nil {
		u.SetAnnotations(ann)
	}
	if legacy {
		u.Object["spec"] = map[string]any{"upstreamSpec": map[string]any{"awsEc2": awsEc2}}
	} else {
		u.Object["spec"] = map[string]any{"awsEc2": awsEc2}
	}
	return u
}

func ec2Spec(region, secret string, filters ...map[string]any) map[string]any {
	fs := make([]any, 0, len(filters))
	for _, f := range filters {
		fs = append(fs, f)
	}
	s := map[string]any{"region": region, "filters": fs}
	if secret != "" {
		s["secretRef"] = map[string]any{"name": secret, "namespace": "default"}
	}
	return s
}

func kv(k, v string) map[string]any {
	return map[string]any{"kvPair": map[string]any{"key": k, "value": v}}
}
func key(k string) map[string]any { return map[string]any{"key": k} }

func TestNewTargetBothShapesGroupAlike(t *testing.T) {
	v1, err := NewTarget(upstreamObj("default", "a", "u1", false, ec2Spec("us-east-1", "aws", kv("app", "web")), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := NewTarget(upstreamObj("default", "b", "u2", true, ec2Spec("us-east-1", "aws", kv("app", "web")), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Invalid != "" || legacy.Invalid != "" {
		t.Fatalf("valid upstreams marked invalid: %q, %q", v1.Invalid, legacy.Invalid)
	}
	if v1.Group() != legacy.Group() {
		t.Fatalf("groups differ: %v vs %v", v1.Group(), legacy.Group())
	}
	want := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws"}, Region: "us-east-1"}
	if v1.Group() != want || v1.Group().String() != "secret/default/aws|us-east-1|" {
		t.Fatalf("group = %v (%s), want %v", v1.Group(), v1.Group(), want)
	}
	if v1.Port() != 80 {
		t.Fatalf("default port = %d, want 80", v1.Port())
	}
}

func TestNewTargetNonEC2AndInvalid(t *testing.T) {
	u := NewUpstreamObject()
	u.SetName("kube")
	u.Object["spec"] = map[string]any{"kube": map[string]any{"serviceName": "x"}}
	if _, err := NewTarget(u, ""); !errors.Is(err, ec2.ErrNotEC2) {
		t.Fatalf("non-EC2 upstream: err = %v, want ErrNotEC2", err)
	}
	bad, err := NewTarget(upstreamObj("default", "bad", "u3", false, ec2Spec("us-east-1", "aws", kv("a", "1"), kv("a", "2")), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bad.Invalid, string(codes.FilterConflict)) {
		t.Fatalf("conflicting filters: Invalid = %q, want code %s", bad.Invalid, codes.FilterConflict)
	}
	if got := GroupTargets([]*Target{bad}); len(got) != 0 {
		t.Fatalf("invalid target was grouped: %v", got)
	}
}

func TestPortTagAnnotationOverridesDefault(t *testing.T) {
	tg, err := NewTarget(upstreamObj("default", "a", "u1", false, ec2Spec("us-east-1", "aws"), map[string]string{ec2.AnnotationPortTag: "svc-port"}), "port")
	if err != nil {
		t.Fatal(err)
	}
	if tg.PortTag != "svc-port" {
		t.Fatalf("PortTag = %q, want the annotation's svc-port", tg.PortTag)
	}
	tg, _ = NewTarget(upstreamObj("default", "a", "u1", false, ec2Spec("us-east-1", "aws"), nil), "port")
	if tg.PortTag != "port" {
		t.Fatalf("PortTag = %q, want the default port", tg.PortTag)
	}
}

func TestSameDiscoveryIgnoresTheDiscoveredAnnotation(t *testing.T) {
	a, _ := NewTarget(upstreamObj("default", "a", "u1", false, ec2Spec("us-east-1", "aws", key("x")), nil), "")
	b, _ := NewTarget(upstreamObj("default", "a", "u1", false, ec2Spec("us-east-1", "aws", key("x")), map[string]string{discovered.Annotation: "{}"}), "")
	c, _ := NewTarget(upstreamObj("default", "a", "u1", false, ec2Spec("us-east-1", "aws", key("y")), nil), "")
	if !a.SameDiscovery(b) {
		t.Error("the discoverer's own annotation changed the discovery fingerprint")
	}
	if a.SameDiscovery(c) {
		t.Error("a filter change did not change the discovery fingerprint")
	}
}

// TestUpstreamChangeMatters: only an update of the discoverer's own annotation (same generation,
// labels, other annotations) is ignored by the Upstream event handler.
func TestUpstreamChangeMatters(t *testing.T) {
	base := func() *unstructured.Unstructured {
		u := upstreamObj("ns", "a", "uid-a", false, ec2Spec("us-east-1", "aws", kv("app", "web")),
			map[string]string{discovered.Annotation: `{"count":1}`, ec2.AnnotationPortTag: "port"})
		u.SetGeneration(3)
		u.SetLabels(map[string]string{"team": "a"})
		return u
	}
	cases := []struct {
		name   string
		change func(u *unstructured.Unstructured)
		want   bool
	}{
		{"discovered annotation only", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{discovered.Annotation: `{"count":2}`, ec2.AnnotationPortTag: "port"})
			u.SetResourceVersion("9")
		}, false},
		{"new generation", func(u *unstructured.Unstructured) { u.SetGeneration(4) }, true},
		{"no generation", func(u *unstructured.Unstructured) { u.SetGeneration(0) }, true},
		{"other annotation", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{discovered.Annotation: `{"count":1}`, ec2.AnnotationPortTag: "other"})
		}, true},
		{"annotation added", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{discovered.Annotation: `{"count":1}`, ec2.AnnotationPortTag: "port", "x": "y"})
		}, true},
		{"annotation renamed", func(u *unstructured.Unstructured) {
			u.SetAnnotations(map[string]string{discovered.Annotation: `{"count":1}`, "x": "port"})
		}, true},
		{"labels", func(u *unstructured.Unstructured) { u.SetLabels(map[string]string{"team": "b"}) }, true},
		{"uid", func(u *unstructured.Unstructured) { u.SetUID("uid-b") }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := base()
			c.change(n)
			if got := upstreamChangeMatters(base(), n); got != c.want {
				t.Fatalf("upstreamChangeMatters = %v, want %v", got, c.want)
			}
		})
	}
	if !upstreamChangeMatters("not an object", base()) {
		t.Fatal("an update of an unknown type must count")
	}
}
