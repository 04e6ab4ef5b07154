package discovery

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovery/discoverytest"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func tagSourceForTest() TagSource {
	return TagSource{Secret: types.NamespacedName{Namespace: "gloo", Name: "aws"}, Regions: []string{"us-east-1"}}
}

func TestDesiredGenerated(t *testing.T) {
	ix := NewIndex([]ec2api.Instance{
		inst("i-1", map[string]string{TagUpstream: "web"}),
		inst("i-2", map[string]string{TagUpstream: "web"}),
		inst("i-3", map[string]string{TagUpstream: "api", TagNamespace: "team-a"}),
		inst("i-4", map[string]string{TagUpstream: "Bad_Name"}),
		inst("i-5", map[string]string{TagUpstream: "x", TagNamespace: "no.dots"}),
		inst("i-6", map[string]string{"app": "web"}),
		inst("i-7", map[string]string{TagUpstream: "db", TagNamespace: "gloo"}),
		inst("i-8", map[string]string{TagUpstream: "sys", TagNamespace: "kube-system"}), // not allowed
	})
	src := tagSourceForTest()
	src.Namespaces = ec2.NamespaceList{"team-a"}
	got, problems := DesiredGenerated(src, ix)
	want := []GeneratedUpstream{
		{Key: types.NamespacedName{Namespace: "gloo", Name: "db"}},
		{Key: types.NamespacedName{Namespace: "gloo", Name: "web"}},
		{Key: types.NamespacedName{Namespace: "team-a", Name: "api"}, ByNamespaceTag: true},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("desired = %+v\nwant %+v", got, want)
	}
	if len(problems) != 3 || !strings.Contains(problems[0], "i-4") || !strings.Contains(problems[1], "i-5") ||
		!strings.Contains(problems[2], "i-8") || !strings.Contains(problems[2], string(codes.GeneratedNamespaceRefused)) {
		t.Fatalf("problems = %q", problems)
	}
}

// TestGeneratedObjectIsAValidEC2Upstream: generated Upstreams pass the same rules as any other
// (the webhook judges them) and select exactly their instances.
func TestGeneratedObjectIsAValidEC2Upstream(t *testing.T) {
	group := tagSourceForTest().Groups()[0]
	for _, g := range []GeneratedUpstream{
		{Key: types.NamespacedName{Namespace: "gloo", Name: "web"}},
		{Key: types.NamespacedName{Namespace: "team-a", Name: "api"}, ByNamespaceTag: true},
	} {
		obj := GeneratedObject(g, group)
		obj.SetUID("u")
		tg, err := NewTarget(obj, "")
		if err != nil {
			t.Fatal(err)
		}
		if tg.Invalid != "" || !tg.Generated || tg.Group() != group {
			t.Fatalf("%s: invalid %q, generated %v, group %v", g.Key, tg.Invalid, tg.Generated, tg.Group())
		}
		if obj.GetAnnotations()[AnnotationGeneratedFrom] != group.String() {
			t.Fatalf("generated-from = %q", obj.GetAnnotations()[AnnotationGeneratedFrom])
		}
		tags := map[string]string{TagUpstream: g.Key.Name, TagNamespace: g.Key.Namespace}
		if !tg.Matcher.Match(tags) {
			t.Fatalf("%s does not select its own instance", g.Key)
		}
		tags[TagUpstream] = "other"
		if tg.Matcher.Match(tags) {
			t.Fatalf("%s selects another upstream's instance", g.Key)
		}
	}
}

func TestGeneratorSync(t *testing.T) {
	ctx := context.Background()
	src := tagSourceForTest()
	group := src.Groups()[0]
	userOwned := upstreamObj("gloo", "api", "u-user", false, ec2Spec("us-east-1", "aws"), nil)
	secret := awsSecret("aws")
	secret.Namespace = "gloo"
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(userOwned, secret).Build()
	w := discoverytest.NewRecordingWriter(c)
	g := NewGenerator(c, w, testMetrics(t), logr.Discard())

	ix := NewIndex([]ec2api.Instance{
		inst("i-1", map[string]string{TagUpstream: "web"}),
		inst("i-2", map[string]string{TagUpstream: "api"}), // taken by a user's upstream
	})
	if _, err := g.Sync(ctx, src, group, ix); err != nil {
		t.Fatal(err)
	}
	web := NewUpstreamObject()
	if err := c.Get(ctx, types.NamespacedName{Namespace: "gloo", Name: "web"}, web); err != nil {
		t.Fatalf("generated upstream gloo/web missing: %v", err)
	}
	if web.GetLabels()[LabelGenerated] != "true" {
		t.Fatalf("labels = %v", web.GetLabels())
	}
	api := NewUpstreamObject()
	_ = c.Get(ctx, types.NamespacedName{Namespace: "gloo", Name: "api"}, api)
	if api.GetUID() != "u-user" || api.GetLabels()[LabelGenerated] == "true" {
		t.Fatal("the user's upstream gloo/api was replaced")
	}

	before := w.Count()
	if n, err := g.Sync(ctx, src, group, ix); err != nil || n != 0 || w.Count() != before {
		t.Fatalf("second sync: %d writes (%d reached the API), err %v", n, w.Count()-before, err)
	}

	// The tag is gone from every instance: the generated upstream goes; the user's stays.
	if _, err := g.Sync(ctx, src, group, NewIndex([]ec2api.Instance{inst("i-1", nil)})); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "gloo", Name: "web"}, NewUpstreamObject()); err == nil {
		t.Fatal("gloo/web was not deleted")
	}
	if err := c.Get(ctx, types.NamespacedName{Namespace: "gloo", Name: "api"}, NewUpstreamObject()); err != nil {
		t.Fatalf("the user's upstream was deleted: %v", err)
	}
}

// TestGeneratorLimits: instance tags choose only allow-listed namespaces, only namespaces the
// source secret may be used from (never a secretRef the secret does not allow), and at most
// MaxUpstreams Upstreams per group, those that exist first.
func TestGeneratorLimits(t *testing.T) {
	ctx := context.Background()
	src := tagSourceForTest()
	src.Namespaces = ec2.NamespaceList{"team-a", "team-b"}
	src.MaxUpstreams = 3
	group := src.Groups()[0]
	secret := awsSecret("aws")
	secret.Namespace = "gloo"
	secret.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: "team-a"}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(secret).Build()
	m := testMetrics(t)
	g := NewGenerator(c, discoverytest.NewRecordingWriter(c), m, logr.Discard())

	ix := NewIndex([]ec2api.Instance{
		inst("i-1", map[string]string{TagUpstream: "sys", TagNamespace: "kube-system"}), // not allow-listed
		inst("i-2", map[string]string{TagUpstream: "b", TagNamespace: "team-b"}),        // allow-listed, secret does not allow it
		inst("i-3", map[string]string{TagUpstream: "a", TagNamespace: "team-a"}),
		inst("i-4", map[string]string{TagUpstream: "w1"}),
		inst("i-5", map[string]string{TagUpstream: "w2"}),
	})
	if _, err := g.Sync(ctx, src, group, ix); err != nil {
		t.Fatal(err)
	}
	list := NewUpstreamList()
	if err := c.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range list.Items {
		got = append(got, u.GetNamespace()+"/"+u.GetName())
		ref, _, _ := unstructured.NestedString(u.Object, "spec", "awsEc2", "secretRef", "namespace")
		if ref != u.GetNamespace() && !ec2.SecretUsableFrom(ref, secret.Annotations, u.GetNamespace()) {
			t.Errorf("%s/%s was generated with a secretRef the secret does not allow", u.GetNamespace(), u.GetName())
		}
	}
	slices.Sort(got)
	if want := []string{"gloo/w1", "gloo/w2", "team-a/a"}; !slices.Equal(got, want) {
		t.Fatalf("generated %v, want %v", got, want)
	}
	if v := metricValue(t, m.generatedSkip); v != 2 {
		t.Errorf("generated_upstreams_skipped = %v, want 2 (kube-system, team-b)", v)
	}

	// Two more instances ask for Upstreams that sort first: the cap keeps the existing three.
	ix = NewIndex(append(slices.Clone(ix.instances), inst("i-6", map[string]string{TagUpstream: "a0"}), inst("i-7", map[string]string{TagUpstream: "a1"})))
	if _, err := g.Sync(ctx, src, group, ix); err != nil {
		t.Fatal(err)
	}
	list = NewUpstreamList()
	if err := c.List(ctx, list); err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, u := range list.Items {
		got = append(got, u.GetNamespace()+"/"+u.GetName())
	}
	slices.Sort(got)
	if want := []string{"gloo/w1", "gloo/w2", "team-a/a"}; !slices.Equal(got, want) {
		t.Fatalf("after two more tags: generated %v, want the existing %v", got, want)
	}
	if v := metricValue(t, m.generatedCapped); v != 2 {
		t.Errorf("generated_upstreams_capped = %v, want 2", v)
	}
}
