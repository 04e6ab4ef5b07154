package discovery

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/discovery/discoverytest"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

func awsSecret(name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Data: map[string][]byte{
			"aws_access_key_id":     []byte("AKIAIOSFODNN7EXAMPLE"),
			"aws_secret_access_key": []byte(strings.Repeat("s", 40)),
		},
	}
}

// fleet returns n instances: app=web on every third, team on every fifth, a port tag of 9090 on
// every seventh ("bad" on every eleventh), a public IPv4 on even ones.
func fleet(prefix string, n int) []ec2api.Instance {
	out := make([]ec2api.Instance, n)
	for i := range out {
		tags := map[string]string{"Name": fmt.Sprintf("%s-%d", prefix, i)}
		if i%3 == 0 {
			tags["app"] = "web"
		} else if i%3 == 1 {
			tags["app"] = "api"
		}
		if i%5 == 0 {
			tags["team"] = "blue"
		}
		if i%7 == 0 {
			tags["port"] = "9090"
		}
		if i%11 == 0 {
			tags["port"] = "bad"
		}
		inst := ec2api.Instance{
			ID: fmt.Sprintf("i-%s%05d", prefix, i), PrivateIPv4: fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256),
			AvailabilityZone: "zone-" + prefix, State: "running", Tags: tags,
		}
		if i%2 == 0 {
			inst.PublicIPv4 = fmt.Sprintf("54.%d.%d.%d", i/65536, i/256%256, i%256)
		}
		out[i] = inst
	}
	return out
}

// expectedEndpoints is discoverytest.ExpectedEndpoints over the fake's instances, as address ->
// port (what published reads).
func expectedEndpoints(insts []ec2api.Instance, pairs map[string]string, keys []string, public bool, port int32, portTag string) map[string]string {
	in := make([]discoverytest.Instance, len(insts))
	for i, x := range insts {
		in[i] = discoverytest.Instance{ID: x.ID, State: x.State, PrivateIP: x.PrivateIPv4, PublicIP: x.PublicIPv4, Zone: x.AvailabilityZone, Tags: x.Tags}
	}
	out := map[string]string{}
	for _, e := range discoverytest.ExpectedEndpoints(in, pairs, keys, public, port, portTag) {
		out[e.Address] = fmt.Sprint(e.Port)
	}
	return out
}

// published reads the endpoints of an Upstream's slices from the API: address -> port.
func published(t *testing.T, c client.Reader, ns, upstream string) map[string]string {
	t.Helper()
	var l discoveryv1.EndpointSliceList
	if err := c.List(context.Background(), &l, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: ServiceName(upstream)}); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range l.Items {
		for _, e := range s.Endpoints {
			out[e.Addresses[0]] = fmt.Sprint(*s.Ports[0].Port)
		}
	}
	return out
}

func sameEndpoints(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d endpoints published, want %d", what, len(got), len(want))
	}
	for addr, port := range want {
		if got[addr] != port {
			t.Errorf("%s: endpoint %s has port %q, want %q", what, addr, got[addr], port)
			return
		}
	}
}

type harness struct {
	t         *testing.T
	d         *Discoverer
	c         client.Client
	w         *discoverytest.RecordingWriter
	ec2       *fakeEC2
	metrics   *Metrics
	refreshes chan RefreshReport
	regroups  chan RegroupReport
	pending   []RefreshReport // received while waiting for another group
	calls     atomic.Int64    // DescribeInstances calls of every report
}

// next waits for the next report of group (refreshes or, with rematch, re-matches).
func (h *harness) next(group GroupKey, rematch bool) RefreshReport {
	h.t.Helper()
	for i, r := range h.pending {
		if r.Group == group && r.Rematch == rematch {
			h.pending = slices.Delete(h.pending, i, i+1)
			return r
		}
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-h.refreshes:
			if r.Group == group && r.Rematch == rematch {
				return r
			}
			h.pending = append(h.pending, r)
		case <-timeout:
			h.t.Fatalf("no refresh of %s within 30s", group)
		}
	}
}

// checkCalls compares the DescribeInstances calls the fake EC2 saw with those the reports
// counted (pages, plus failed attempts and retries).
func (h *harness) checkCalls() {
	h.t.Helper()
	if got, want := h.ec2.callCount("us-east-1")+h.ec2.callCount("eu-west-1"), int(h.calls.Load()); got != want {
		h.t.Fatalf("the EC2 endpoint saw %d DescribeInstances calls, the refresh reports count %d", got, want)
	}
}

func (h *harness) regrouped() RegroupReport {
	h.t.Helper()
	select {
	case r := <-h.regroups:
		return r
	case <-time.After(30 * time.Second):
		h.t.Fatal("no regroup within 30s")
		return RegroupReport{}
	}
}

// startHarness runs a discoverer over a fake Kubernetes client holding objs and a fake EC2
// holding fleets (region -> instances). Refreshes happen at start and when triggered.
func startHarness(t *testing.T, fleets map[string][]ec2api.Instance, objs []client.Object, opts Options) *harness {
	t.Helper()
	return startHarnessWith(t, fleets, objs, opts, nil)
}

// startHarnessWith is startHarness with a report sink.
func startHarnessWith(t *testing.T, fleets map[string][]ec2api.Instance, objs []client.Object, opts Options, reports ReportSink) *harness {
	t.Helper()
	return startHarnessWrapped(t, fleets, objs, opts, reports, nil)
}

// startHarnessWrapped is startHarnessWith whose discoverer writes through wrap(recording writer)
// when wrap is not nil.
func startHarnessWrapped(t *testing.T, fleets map[string][]ec2api.Instance, objs []client.Object, opts Options, reports ReportSink,
	wrap func(client.Writer) client.Writer) *harness {
	t.Helper()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := newFakeEC2(t)
	for region, insts := range fleets {
		srv.set(region, insts)
	}
	h := &harness{t: t, ec2: srv, metrics: testMetrics(t),
		refreshes: make(chan RefreshReport, 1000), regroups: make(chan RegroupReport, 100)}
	h.c = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	h.w = discoverytest.NewRecordingWriter(h.c)
	factory, err := awsclients.NewFactory(awsclients.Options{
		Endpoint: h.ec2.srv.URL, HTTPClient: awsclients.LoopbackOnlyHTTPClient(), // Retries as in production: net/http can hand the SDK a connection it is closing, which the
		// SDK retries (aws-sdk-go-v2#2737).
		Retry: ec2api.RetryOptions{MaxAttempts: 3, MaxBackoff: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Loop.Interval = time.Hour // refreshes are triggered
	opts.Hooks = Hooks{
		OnRefresh: func(r RefreshReport) { h.calls.Add(int64(r.Calls)); h.refreshes <- r },
		OnRegroup: func(r RegroupReport) { h.regroups <- r },
	}
	var writer client.Writer = h.w
	if wrap != nil {
		writer = wrap(h.w)
	}
	h.d, err = New(Deps{Reader: h.c, APIReader: h.c, Writer: writer, AWS: factory, Metrics: h.metrics, Reports: reports, Log: logr.Discard()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	return h
}

func TestDiscovererEndToEndWithFakes(t *testing.T) {
	ctx := context.Background()
	web := upstreamObj("default", "web", "uid-web", false, map[string]any{
		"region": "us-east-1", "secretRef": map[string]any{"name": "aws-a", "namespace": "default"},
		"filters": []any{kv("app", "web")}, "port": int64(8080),
	}, map[string]string{ec2.AnnotationPortTag: "port"})
	team := upstreamObj("default", "team", "uid-team", false, map[string]any{
		"region": "us-east-1", "secretRef": map[string]any{"name": "aws-a", "namespace": "default"},
		"filters": []any{key("team")}, "publicIp": true,
	}, nil)
	api := upstreamObj("default", "api", "uid-api", true, ec2Spec("eu-west-1", "aws-b", kv("app", "api")), nil)
	groupA := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: "us-east-1"}
	groupB := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-b"}, Region: "eu-west-1"}

	east, west := fleet("e", 2100), fleet("w", 300)
	h := startHarness(t, map[string][]ec2api.Instance{"us-east-1": east, "eu-west-1": west},
		[]client.Object{awsSecret("aws-a"), awsSecret("aws-b"), web, team, api}, Options{})

	// First refresh of each group: one listing per group (three pages of 1000 for 2100
	// instances), exactly the selected instances published.
	ra, rb := h.next(groupA, false), h.next(groupB, false)
	if ra.Err != nil || rb.Err != nil {
		t.Fatalf("first refreshes failed: %v / %v", ra.Err, rb.Err)
	}
	if ra.Pages != 3 || ra.Calls < 3 || rb.Pages != 1 || rb.Calls < 1 || ra.Upstreams != 2 || rb.Upstreams != 1 {
		t.Fatalf("group A: %d pages %d calls %d upstreams; group B: %d pages %d calls", ra.Pages, ra.Calls, ra.Upstreams, rb.Pages, rb.Calls)
	}
	h.checkCalls()
	check := func(when string) {
		t.Helper()
		sameEndpoints(t, when+": web", published(t, h.c, "default", "web"), expectedEndpoints(east, map[string]string{"app": "web"}, nil, false, 8080, "port"))
		sameEndpoints(t, when+": team", published(t, h.c, "default", "team"), expectedEndpoints(east, nil, []string{"team"}, true, 80, ""))
		sameEndpoints(t, when+": api", published(t, h.c, "default", "api"), expectedEndpoints(west, map[string]string{"app": "api"}, nil, false, 80, ""))
	}
	check("first refresh")
	st := statusOf(t, h.c, "default", "web")
	if st.Count == 0 || st.Skipped == 0 || st.SkippedInstances[0].Reason != discovered.SkipBadPortTag || st.Overlap == 0 || st.IAM.Decision != verdict.DecisionAllowed || st.Stale {
		t.Fatalf("web status = %+v", st)
	}

	// Unchanged refresh: no writes at all.
	before := h.w.Count()
	h.d.TriggerAll()
	ra, rb = h.next(groupA, false), h.next(groupB, false)
	if ra.Err != nil || rb.Err != nil || ra.Writes != 0 || rb.Writes != 0 || h.w.Count() != before {
		t.Fatalf("unchanged refresh wrote: reports %d+%d, writer %d (errors %v, %v)", ra.Writes, rb.Writes, h.w.Count()-before, ra.Err, rb.Err)
	}

	// Tag an instance into web, tag one out, stop one: reflected by the next refresh.
	h.ec2.update("us-east-1", func(in []ec2api.Instance) []ec2api.Instance {
		in[1].Tags = map[string]string{"app": "web"} // into web
		in[3].Tags = map[string]string{}             // out of web
		in[6].State = "stopped"                      // a web instance stops
		return in
	})
	east[1].Tags, east[3].Tags, east[6].State = map[string]string{"app": "web"}, map[string]string{}, "stopped"
	h.d.TriggerAll()
	if ra = h.next(groupA, false); ra.Err != nil || ra.Writes == 0 || ra.Pages != 3 {
		t.Fatalf("refresh after tag changes: err %v, %d writes", ra.Err, ra.Writes)
	}
	h.next(groupB, false)
	check("after tag changes")

	// Group B's key is revoked: it keeps its endpoints, marked stale; group A goes on.
	h.ec2.failWith("eu-west-1", "AuthFailure")
	h.ec2.update("us-east-1", func(in []ec2api.Instance) []ec2api.Instance { in[9].Tags["app"] = "web"; return in })
	east[9].Tags["app"] = "web"
	h.d.TriggerAll()
	rb = h.next(groupB, false)
	if rb.Err == nil || !rb.Stale || rb.Calls == 0 || rb.Pages != 0 {
		t.Fatalf("revoked group: err %v stale %v, %d calls %d pages (the failed attempt's own calls, no page)", rb.Err, rb.Stale, rb.Calls, rb.Pages)
	}
	if ra = h.next(groupA, false); ra.Err != nil {
		t.Fatalf("group A failed while group B was revoked: %v", ra.Err)
	}
	check("after revocation")
	st = statusOf(t, h.c, "default", "api")
	if !st.Stale || !strings.Contains(st.LastError, "AuthFailure") || st.Count == 0 || st.IAM.Decision != verdict.DecisionUnknown {
		t.Fatalf("api status while revoked = %+v", st)
	}
	var svc corev1.Service
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "ec2-api"}, &svc); err != nil || svc.Annotations[AnnotationStaleSince] == "" {
		t.Fatalf("api service not marked stale: %v %v", err, svc.Annotations)
	}
	if v := metricValue(t, h.metrics.staleGroups); v != 1 {
		t.Fatalf("stale_groups = %v, want 1", v)
	}
	if v := metricValue(t, h.metrics.awsCalls.WithLabelValues("ec2:DescribeInstances", "AuthFailure")); v != 1 {
		t.Fatalf("aws_calls_total{result=AuthFailure} = %v, want 1", v)
	}
	h.checkCalls()

	// Editing an Upstream re-matches the last listing without an AWS call.
	calls := h.ec2.callCount("us-east-1")
	webObj := NewUpstreamObject()
	_ = h.c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "web"}, webObj)
	_ = unstructuredSetFilters(webObj, []any{kv("app", "web"), key("team")})
	if err := h.c.Update(ctx, webObj); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	h.regrouped()
	if r := h.next(groupA, true); r.Writes == 0 || h.ec2.callCount("us-east-1") != calls {
		t.Fatalf("re-match: %d writes, %d new AWS calls", r.Writes, h.ec2.callCount("us-east-1")-calls)
	}
	sameEndpoints(t, "web after edit", published(t, h.c, "default", "web"),
		expectedEndpoints(east, map[string]string{"app": "web"}, []string{"team"}, false, 8080, "port"))

	// Deleting an Upstream deletes what was published for it.
	if err := h.c.Delete(ctx, team); err != nil {
		t.Fatal(err)
	}
	h.d.Regroup()
	for {
		if rg := h.regrouped(); slices.Contains(rg.Removed, types.NamespacedName{Namespace: "default", Name: "team"}) {
			break
		}
	}
	if got := published(t, h.c, "default", "team"); len(got) != 0 {
		t.Fatalf("%d endpoints left for the deleted upstream", len(got))
	}
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "ec2-team"}, &corev1.Service{}); err == nil {
		t.Fatal("the deleted upstream's service is still there")
	}
}

// unstructuredSetFilters replaces the filters of a v1-shape Upstream.
func unstructuredSetFilters(u *unstructured.Unstructured, filters []any) error {
	return unstructured.SetNestedSlice(u.Object, filters, "spec", "awsEc2", "filters")
}

func statusOf(t *testing.T, c client.Reader, ns, name string) discovered.Status {
	t.Helper()
	u := NewUpstreamObject()
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	st, err := discovered.Parse(u.GetAnnotations()[discovered.Annotation])
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// metricValue sums the values of every series a collector holds.
func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	sum := 0.0
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		sum += d.GetGauge().GetValue() + d.GetCounter().GetValue()
	}
	return sum
}

func TestDiscovererDiscoversFromTags(t *testing.T) {
	ctx := context.Background()
	east := fleet("e", 40)
	for i := range 4 {
		east[i].Tags[TagUpstream] = "gen-web"
	}
	east[10].Tags[TagUpstream] = "gen-api"
	east[10].Tags[TagNamespace] = "team-a"
	invalid := upstreamObj("default", "bad", "uid-bad", false, ec2Spec("us-east-1", "aws-a", kv("a", "1"), kv("a", "2")), nil)
	// team-a is allowed as a target namespace, and the secret is shared with it.
	src := TagSource{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Regions: []string{"us-east-1"}, Namespaces: ec2.NamespaceList{"team-a"}}
	secret := awsSecret("aws-a")
	secret.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: "team-a"}
	h := startHarness(t, map[string][]ec2api.Instance{"us-east-1": east},
		[]client.Object{secret, invalid}, Options{TagSources: []TagSource{src}, DefaultPortTag: "port"})
	group := src.Groups()[0]

	if r := h.next(group, false); r.Err != nil || r.Upstreams != 0 {
		t.Fatalf("first refresh: err %v, %d upstreams", r.Err, r.Upstreams)
	}
	for _, key := range []types.NamespacedName{{Namespace: "default", Name: "gen-web"}, {Namespace: "team-a", Name: "gen-api"}} {
		if err := h.c.Get(ctx, key, NewUpstreamObject()); err != nil {
			t.Fatalf("generated upstream %s: %v", key, err)
		}
	}
	if st := statusOf(t, h.c, "default", "bad"); !strings.Contains(st.LastError, string(codes.FilterConflict)) {
		t.Fatalf("invalid upstream's status = %+v", st)
	}

	// The informer would report the new Upstreams; here the test regroups: they join the
	// group and are published from its last listing at once.
	h.d.Regroup()
	if r := h.next(group, true); r.Upstreams != 2 || r.Writes == 0 {
		t.Fatalf("re-match after generation: %d upstreams, %d writes", r.Upstreams, r.Writes)
	}
	sameEndpoints(t, "gen-web", published(t, h.c, "default", "gen-web"),
		expectedEndpoints(east, map[string]string{TagUpstream: "gen-web"}, nil, false, 80, "port"))
	sameEndpoints(t, "gen-api", published(t, h.c, "team-a", "gen-api"),
		expectedEndpoints(east, map[string]string{TagUpstream: "gen-api", TagNamespace: "team-a"}, nil, false, 80, "port"))

	// No instance carries gen-api any more: the next refresh deletes it, and the regroup that
	// follows deletes its endpoints.
	h.ec2.update("us-east-1", func(in []ec2api.Instance) []ec2api.Instance { delete(in[10].Tags, TagUpstream); return in })
	h.d.TriggerAll()
	h.next(group, false)
	if err := h.c.Get(ctx, types.NamespacedName{Namespace: "team-a", Name: "gen-api"}, NewUpstreamObject()); err == nil {
		t.Fatal("team-a/gen-api still exists")
	}
	h.d.Regroup()
	for {
		if rg := h.regrouped(); slices.Contains(rg.Removed, types.NamespacedName{Namespace: "team-a", Name: "gen-api"}) {
			break
		}
	}
	if got := published(t, h.c, "team-a", "gen-api"); len(got) != 0 {
		t.Fatalf("%d endpoints left for the deleted generated upstream", len(got))
	}
	if len(published(t, h.c, "default", "gen-web")) == 0 {
		t.Fatal("gen-web lost its endpoints")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	factory, err := awsclients.NewFactory(awsclients.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deps := Deps{Reader: c, APIReader: c, Writer: c, AWS: factory, Metrics: testMetrics(t), Log: logr.Discard()}
	for name, o := range map[string]Options{
		"publish mode":   {Publish: "services"},
		"heartbeat":      {AnnotationHeartbeat: -time.Second},
		"tag source":     {TagSources: []TagSource{{Regions: []string{"us-east-1"}}}},
		"no tag regions": {TagSources: []TagSource{{Secret: types.NamespacedName{Namespace: "a", Name: "b"}}}},
	} {
		if _, err := New(deps, o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(Deps{}, Options{}); err == nil {
		t.Error("New accepted missing dependencies")
	}
}
