package discovery

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func secretRefSpec(region, secretNS, secret string, filters ...map[string]any) map[string]any {
	s := ec2Spec(region, "", filters...)
	s["secretRef"] = map[string]any{"name": secret, "namespace": secretNS}
	return s
}

// TestDiscovererEnforcesSecretUse: an Upstream stored without the webhook's check (webhook down,
// excluded by a selector, created before install) is discovered with a secret only when the
// secret is in its namespace or opts in to it, and with the pod's own identity only in an
// allow-listed namespace. Refused Upstreams cause no AWS call, lose what was published for them,
// and say why in their annotation, their report and a metric; a credential group shared by an
// allowed and a refused Upstream still serves the allowed one.
func TestDiscovererEnforcesSecretUse(t *testing.T) {
	ctx := context.Background()
	// The pod's own identity (the SDK's default chain) for the allow-listed namespace.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", strings.Repeat("p", 40))

	shared := awsSecret("aws-shared")
	shared.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: "team-b"}
	own := upstreamObj("default", "own", "uid-own", false, secretRefSpec("us-east-1", "default", "aws-a", kv("app", "web")), nil)
	allowed := upstreamObj("team-b", "allowed", "uid-allowed", false, secretRefSpec("us-east-1", "default", "aws-shared", kv("app", "web")), nil)
	borrower := upstreamObj("team-a", "borrower", "uid-borrower", false, secretRefSpec("us-east-1", "default", "aws-shared", kv("app", "api")), nil)
	thief := upstreamObj("team-a", "thief", "uid-thief", false, secretRefSpec("eu-west-1", "default", "aws-a", kv("app", "web")), nil)
	podOK := upstreamObj("team-d", "pod-ok", "uid-pod-ok", false, ec2Spec("us-east-1", "", kv("app", "web")), nil)
	podNo := upstreamObj("team-c", "pod-no", "uid-pod-no", false, ec2Spec("eu-west-1", "", kv("app", "web")), nil)

	// What an earlier discoverer (without the check) published for the borrower.
	oldSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: ServiceName("borrower"),
		Labels: map[string]string{LabelServiceManagedBy: ManagedBy, LabelUpstreamUID: "uid-borrower"}}}
	oldSlice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: SliceName(ServiceName("borrower"), 80, 0),
		Labels: map[string]string{discoveryv1.LabelManagedBy: ManagedBy, LabelUpstreamUID: "uid-borrower", discoveryv1.LabelServiceName: ServiceName("borrower")}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.9.9.9"}}}}

	east, west := fleet("e", 60), fleet("w", 30)
	sink := &recordingSink{last: map[types.NamespacedName]discovered.Status{}}
	h := startHarnessWith(t, map[string][]ec2api.Instance{"us-east-1": east, "eu-west-1": west},
		[]client.Object{awsSecret("aws-a"), shared, own, allowed, borrower, thief, podOK, podNo, oldSvc, oldSlice},
		Options{PodIdentityNamespaces: ec2.NamespaceList{"team-d"}}, sink)

	groupA := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: "us-east-1"}
	groupShared := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-shared"}, Region: "us-east-1"}
	groupPod := GroupKey{Region: "us-east-1"}
	rg := h.regrouped()
	// Three groups: aws-a in us-east-1, aws-shared in us-east-1 (allowed + borrower), the pod's
	// identity in us-east-1. The thief's (aws-a, eu-west-1) and pod-no's (pod, eu-west-1) groups
	// have only refused members and do not exist.
	if rg.Groups != 3 || rg.Err != nil {
		t.Fatalf("first regroup: %d groups (want 3), err %v", rg.Groups, rg.Err)
	}
	for _, g := range []GroupKey{groupA, groupShared, groupPod} {
		if r := h.next(g, false); r.Err != nil {
			t.Fatalf("group %s: %v", g, r.Err)
		}
	}
	if n := h.ec2.callCount("eu-west-1"); n != 0 {
		t.Fatalf("%d DescribeInstances calls in eu-west-1, where only refused Upstreams are", n)
	}
	sameEndpoints(t, "own", published(t, h.c, "default", "own"), expectedEndpoints(east, map[string]string{"app": "web"}, nil, false, 80, ""))
	sameEndpoints(t, "allowed", published(t, h.c, "team-b", "allowed"), expectedEndpoints(east, map[string]string{"app": "web"}, nil, false, 80, ""))
	sameEndpoints(t, "pod-ok", published(t, h.c, "team-d", "pod-ok"), expectedEndpoints(east, map[string]string{"app": "web"}, nil, false, 80, ""))

	for _, c := range []struct {
		ns, name string
		code     ec2.Code
	}{
		{"team-a", "borrower", codes.DiscoverySecretNotShared},
		{"team-a", "thief", codes.DiscoverySecretNotShared},
		{"team-c", "pod-no", codes.DiscoveryPodIdentityNotAllowed},
	} {
		key := types.NamespacedName{Namespace: c.ns, Name: c.name}
		if got := published(t, h.c, c.ns, c.name); len(got) != 0 {
			t.Errorf("%s: %d endpoints published for a refused Upstream", key, len(got))
		}
		if err := h.c.Get(ctx, client.ObjectKey{Namespace: c.ns, Name: ServiceName(c.name)}, &corev1.Service{}); err == nil {
			t.Errorf("%s: a Service exists for a refused Upstream", key)
		}
		st := statusOf(t, h.c, c.ns, c.name)
		if st.Refusal == nil || st.Refusal.Code != string(c.code) || !strings.Contains(st.LastError, string(c.code)) || st.Count != 0 {
			t.Errorf("%s: status %+v, want refused with %s", key, st, c.code)
		}
		if rst, ok := sink.status(key); !ok || rst.Refusal == nil || rst.Refusal.Code != string(c.code) {
			t.Errorf("%s: report status %+v (ok %v), want refused with %s", key, rst, ok, c.code)
		}
		if v := metricValue(t, h.metrics.refused.WithLabelValues(c.ns, c.name, string(c.code))); v != 1 {
			t.Errorf("%s: upstream_refused = %v, want 1", key, v)
		}
	}
	if v := metricValue(t, h.metrics.refused); v != 3 {
		t.Errorf("upstream_refused sums to %v, want 3", v)
	}
	// No annotation or message names the refused secret's principal or keys.
	if st := statusOf(t, h.c, "team-a", "borrower"); st.IAM != nil || strings.Contains(st.LastError, "AKIA") {
		t.Errorf("borrower's status shows IAM details of a secret it may not use: %+v", st)
	}

	// The secret's owner opts in to team-a: the borrower joins the shared group and is
	// published from its last listing; its refusal is cleared.
	sec := &corev1.Secret{}
	if err := h.c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "aws-shared"}, sec); err != nil {
		t.Fatal(err)
	}
	sec.Annotations[ec2.AnnotationSecretAllowedNamespaces] = "team-b, team-a"
	if err := h.c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	if r := h.next(groupShared, true); r.Upstreams != 2 || r.PublishErr != nil {
		t.Fatalf("re-match after the opt-in: %d upstreams, %v", r.Upstreams, r.PublishErr)
	}
	sameEndpoints(t, "borrower after opt-in", published(t, h.c, "team-a", "borrower"), expectedEndpoints(east, map[string]string{"app": "api"}, nil, false, 80, ""))
	if st := statusOf(t, h.c, "team-a", "borrower"); st.Refusal != nil || st.LastError != "" {
		t.Errorf("borrower after the opt-in: %+v", st)
	}
	if v := metricValue(t, h.metrics.refused); v != 2 {
		t.Errorf("upstream_refused sums to %v after the opt-in, want 2", v)
	}

	// The owner withdraws it: refused again, its endpoints removed, the group keeps serving team-b.
	sec.Annotations[ec2.AnnotationSecretAllowedNamespaces] = "team-b"
	if err := h.c.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	if r := h.next(groupShared, true); r.Upstreams != 1 {
		t.Fatalf("re-match after the withdrawal: %d upstreams", r.Upstreams)
	}
	if got := published(t, h.c, "team-a", "borrower"); len(got) != 0 {
		t.Errorf("borrower keeps %d endpoints after the withdrawal", len(got))
	}
	if st := statusOf(t, h.c, "team-a", "borrower"); st.Refusal == nil {
		t.Errorf("borrower after the withdrawal: %+v", st)
	}
	sameEndpoints(t, "allowed after withdrawal", published(t, h.c, "team-b", "allowed"), expectedEndpoints(east, map[string]string{"app": "web"}, nil, false, 80, ""))
}

// TestRegroupReusesUnchangedUpstreams: a regroup decodes and validates only the Upstreams that
// changed since the previous one (resourceVersion), so one large stored Upstream is not
// re-validated on every event of every other Upstream or Secret.
func TestRegroupReusesUnchangedUpstreams(t *testing.T) {
	ctx := context.Background()
	group := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: "us-east-1"}
	objs := []client.Object{awsSecret("aws-a"), upstreamObj("default", "notec2", "uid-x", false, nil, nil)}
	for _, n := range []string{"a", "b", "c"} {
		objs = append(objs, upstreamObj("default", n, "uid-"+n, false, ec2Spec("us-east-1", "aws-a", kv("app", "web")), nil))
	}
	delete(objs[1].(interface{ UnstructuredContent() map[string]any }).UnstructuredContent(), "spec")
	h := startHarness(t, map[string][]ec2api.Instance{"us-east-1": fleet("e", 20)}, objs, Options{})
	if rg := h.regrouped(); rg.Decoded != 4 || rg.Upstreams != 3 {
		t.Fatalf("first regroup decoded %d objects for %d EC2 upstreams, want 4 and 3", rg.Decoded, rg.Upstreams)
	}
	h.next(group, false) // annotates a, b and c (new resourceVersions)
	h.d.Regroup()
	if rg := h.regrouped(); rg.Decoded != 3 {
		t.Fatalf("regroup after the annotations decoded %d, want 3", rg.Decoded)
	}
	h.d.Regroup()
	if rg := h.regrouped(); rg.Decoded != 0 {
		t.Fatalf("regroup without changes decoded %d, want 0", rg.Decoded)
	}
	obj := NewUpstreamObject()
	if err := h.c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "b"}, obj); err != nil {
		t.Fatal(err)
	}
	if err := unstructuredSetFilters(obj, []any{kv("app", "api")}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Update(ctx, obj); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	if rg := h.regrouped(); rg.Decoded != 1 || rg.Upstreams != 3 {
		t.Fatalf("regroup after editing b decoded %d (want 1), %d upstreams", rg.Decoded, rg.Upstreams)
	}
}
