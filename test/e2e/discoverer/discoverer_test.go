// Package discoverer_test runs the discoverer end to end: a real kube-apiserver and etcd
// (envtest, test/harness/k8senv), the real kubectl, and moto as AWS (test/harness/awsemu), with
// 2,500 instances over two credential groups and two regions.
package discoverer_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/discovery/discoverytest"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
	"github.com/ec2guard/ec2guard/pkg/report"
	"github.com/ec2guard/ec2guard/pkg/verdict"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

const (
	east = "us-east-1"
	west = "eu-west-1"
	// refreshInterval is short so that the test runs in minutes; every wait is on a refresh
	// report, never on time.
	refreshInterval = 2 * time.Second
)

// discoveryPolicy lets a user list instances and read its own IAM policies (for the local
// IAM source). moto checks actions only.
const discoveryPolicy = `{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "iam:Get*", "iam:List*", "sts:GetCallerIdentity"], "Resource": "*"}]}`

const adminPolicy = `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}`

// reservation is one RunInstances call of the seed.
type reservation struct {
	region string
	n      int
	tags   map[string]string
}

// fleetPlan: us-east-1 gets 1,500 instances in 1,050 reservations (moto's MaxResults counts
// reservations, so group A's listing takes two pages of 1,000), eu-west-1 1,000 in 500.
func fleetPlan() []reservation {
	var out []reservation
	for r := range 1050 {
		tags := map[string]string{"Name": fmt.Sprintf("east-%d", r)}
		switch r % 3 {
		case 0:
			tags["app"] = "web"
		case 1:
			tags["app"] = "api"
		}
		if r%2 == 0 {
			tags["env"] = "prod"
		} else {
			tags["env"] = "dev"
		}
		if r%5 == 0 {
			tags["team"] = "blue"
		}
		if r%7 == 0 {
			tags["port"] = "8081"
		}
		if r%13 == 0 {
			tags["port"] = "http" // not a port: skipped where the port tag is "port"
		}
		if r%11 == 0 {
			tags["web-port"] = "9443"
		}
		if r%23 == 0 {
			tags["web-port"] = "99999" // not a port: skipped by web
		}
		if r%17 == 2 {
			tags["App"] = "web" // Gloo's lowercased keys would route web here; AWS and ec2guard do not
		}
		if r%50 == 1 {
			tags[discovery.TagUpstream] = "gen-web"
		}
		if r%97 == 4 {
			tags[discovery.TagUpstream] = "gen-api"
			tags[discovery.TagNamespace] = "team-a"
		}
		n := 1
		if r < 450 {
			n = 2
		}
		out = append(out, reservation{region: east, n: n, tags: tags})
	}
	for r := range 500 {
		tags := map[string]string{"Name": fmt.Sprintf("west-%d", r), "env": "prod"}
		if r%2 == 0 {
			tags["app"] = "api"
		} else {
			tags["app"] = "web"
		}
		if r%9 == 0 {
			tags["port"] = "7070"
		}
		out = append(out, reservation{region: west, n: 2, tags: tags})
	}
	return out
}

// seed runs the plan with a few parallel workers (moto handles one request per thread).
func seed(ctx context.Context, sd *awsemu.Seeder, plan []reservation) (int, error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var mu sync.Mutex
	total := 0
	for _, r := range plan {
		g.Go(func() error {
			insts, err := sd.RunInstances(gctx, r.region, r.n, r.tags)
			if err != nil {
				return err
			}
			mu.Lock()
			total += len(insts)
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return total, err
}

const upstreamsYAML = `apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: web
  namespace: default
  annotations:
    ec2guard.io/port-tag: web-port
spec:
  awsEc2:
    region: us-east-1
    secretRef: {name: aws-a, namespace: default}
    filters:
    - kvPair: {key: app, value: web}
    - kvPair: {key: env, value: prod}
    port: 8080
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: blue
  namespace: default
spec:
  upstreamSpec:
    awsEc2:
      region: us-east-1
      secretRef: {name: aws-a, namespace: default}
      filters:
      - key: team
      publicIp: true
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: api-eu
  namespace: default
spec:
  awsEc2:
    region: eu-west-1
    secretRef: {name: aws-b, namespace: default}
    filters:
    - kvPair: {key: app, value: api}
`

func awsSecret(name string, u awsemu.User) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			"aws_access_key_id":     []byte(u.AccessKeyID),
			"aws_secret_access_key": []byte(u.SecretAccessKey),
		},
	}
}

// lockedBuffer collects the discoverer's logs (checked for secrets at the end).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a discoverer under a controller-runtime manager with leader election, wired like
// cmd/discoverer but with counting AWS HTTP and Kubernetes writer wrappers.
type running struct {
	writer  *discoverytest.RecordingWriter
	http    *countingHTTP
	metrics *prometheus.Registry
	logs    *lockedBuffer
	stop    func()
}

func startDiscoverer(t *testing.T, ctx context.Context, env *k8senv.Env, moto *awsemu.Server, rep *reports, tagSecret types.NamespacedName) *running {
	t.Helper()
	return startDiscovererWith(t, ctx, env, moto, rep, func(o *discovery.Options) {
		// team-a may receive generated Upstreams (the secret shares itself with it too).
		o.TagSources = []discovery.TagSource{{Secret: tagSecret, Regions: []string{east}, Namespaces: ec2.NamespaceList{"team-a"}}}
	})
}

// startDiscovererWith is startDiscoverer without a tag source; edit adjusts the options.
func startDiscovererWith(t *testing.T, ctx context.Context, env *k8senv.Env, moto *awsemu.Server, rep *reports, edit func(*discovery.Options)) *running {
	t.Helper()
	r := &running{http: &countingHTTP{next: awsclients.LoopbackOnlyHTTPClient()}, logs: &lockedBuffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         discovery.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "ec2guard-discoverer-e2e",
		LeaderElectionNamespace:       "default",
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	factory, err := awsclients.NewFactory(awsclients.Options{
		Endpoint: moto.Endpoint(), HTTPClient: r.http, Logger: log,
		Retry: ec2api.RetryOptions{MaxAttempts: 3, MaxBackoff: 200 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	collector, err := collect.New(collect.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r.metrics = prometheus.NewRegistry()
	metrics, err := discovery.NewMetrics(r.metrics)
	if err != nil {
		t.Fatal(err)
	}
	r.writer = discoverytest.NewRecordingWriter(mgr.GetClient())
	opts := discovery.Options{
		Loop:           discovery.LoopOptions{Interval: refreshInterval, Jitter: 0.1, Timeout: 2 * time.Minute, MaxBackoff: 2 * refreshInterval},
		Publish:        discovery.PublishEndpointSlices,
		DefaultPortTag: "port",
		ZoneHints:      true,
		Hooks:          rep.hooks(),
	}
	if edit != nil {
		edit(&opts)
	}
	d, err := discovery.New(discovery.Deps{
		Reader: mgr.GetCache(), APIReader: mgr.GetAPIReader(), Writer: r.writer, Informers: mgr.GetCache(),
		AWS: factory, Auditor: discovery.NewAuditor(engine, collector), Metrics: metrics,
		// Reports are written through the counting writer, so they count as writes like the rest.
		Reports: report.NewWriter(mgr.GetAPIReader(), r.writer, mgr.GetRESTMapper(), metrics, nil, logr.FromSlogHandler(log.Handler())),
		Log:     logr.FromSlogHandler(log.Handler()),
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	var once sync.Once
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// metricValue sums every series of the metric family name in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue series
				}
			}
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

// getReport reads the consistency report of an Upstream.
func getReport(ctx context.Context, c client.Reader, ns, upstream string) (*report.Report, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(report.GVK())
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: report.Name(upstream)}, u); err != nil {
		return nil, err
	}
	r := &report.Report{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, r); err != nil {
		return nil, fmt.Errorf("decode report %s/%s: %w", ns, report.Name(upstream), err)
	}
	return r, nil
}

// checkWebReport checks the OpenReports Report of default/web against its annotation st: owned by
// the Upstream, iam pass, consistency pass, discovery / overlap / case-sensitivity warn.
func checkWebReport(t *testing.T, ctx context.Context, c client.Reader, st discovered.Status) {
	t.Helper()
	r, err := getReport(ctx, c, "default", "web")
	if err != nil {
		t.Fatalf("report of default/web: %v", err)
	}
	u := discovery.NewUpstreamObject()
	if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: "web"}, u); err != nil {
		t.Fatal(err)
	}
	if len(r.OwnerReferences) != 1 || r.OwnerReferences[0].UID != u.GetUID() || r.OwnerReferences[0].Kind != "Upstream" ||
		r.OwnerReferences[0].APIVersion != "gloo.solo.io/v1" || *r.OwnerReferences[0].Controller {
		t.Errorf("report owner references %+v, want the Upstream %s (not controller)", r.OwnerReferences, u.GetUID())
	}
	if r.Labels[report.LabelManagedBy] != report.ManagedBy || r.Labels[report.LabelUpstream] != "web" || r.Source != report.Source ||
		r.Scope == nil || r.Scope.Name != "web" || r.Scope.UID != u.GetUID() {
		t.Errorf("report identity: labels %v, source %q, scope %+v", r.Labels, r.Source, r.Scope)
	}
	want := map[string]string{report.CheckIAM: "pass", report.CheckConsistency: "pass", report.CheckDiscovery: "warn",
		report.CheckOverlap: "warn", report.CheckCaseSensitivity: "warn"}
	got := map[string]string{}
	for _, res := range r.Results {
		got[res.Policy] = string(res.Result)
		if res.Policy == report.CheckConsistency {
			p := res.Properties
			if p[report.PropRegion] != east || p[report.PropMatched] != fmt.Sprint(st.Matched) || p[report.PropConsistency] != st.Consistency ||
				p[report.PropPrincipal] != st.IAM.Principal || p[report.PropFilters] == "" {
				t.Errorf("report properties %v, annotation %+v", p, st)
			}
		}
	}
	for check, w := range want {
		if got[check] != w {
			t.Errorf("report result %s = %q, want %q (results %v)", check, got[check], w, got)
		}
	}
	if r.Summary.Pass != 2 || r.Summary.Warn != 3 {
		t.Errorf("report summary %+v", r.Summary)
	}
}

func statusOf(t *testing.T, c client.Reader, ns, name string) discovered.Status {
	t.Helper()
	u := discovery.NewUpstreamObject()
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("get upstream %s/%s: %v", ns, name, err)
	}
	st, err := discovered.Parse(u.GetAnnotations()[discovered.Annotation])
	if err != nil {
		t.Fatalf("upstream %s/%s: %v", ns, name, err)
	}
	return st
}

// fleetState is moto's view of a region, read with the admin's keys (independent of the
// discoverer's listing code).
func fleetState(t *testing.T, ctx context.Context, sd *awsemu.Seeder, region string) []awsemu.Instance {
	t.Helper()
	insts, err := sd.DescribeInstances(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	return insts
}

func TestDiscovererEndToEnd(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	moto := awsemu.Start(t)
	env := k8senv.Start(t, k8senv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	c := env.Client

	// IAM: one user per credential group, an admin for changes once auth is on.
	sd := moto.Seeder()
	var users [3]awsemu.User
	for i, name := range []string{"admin", "discover-a", "discover-b"} {
		u, err := sd.CreateUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		policy := discoveryPolicy
		if i == 0 {
			policy = adminPolicy
		}
		if err := sd.PutUserPolicy(ctx, name, "policy", policy); err != nil {
			t.Fatal(err)
		}
		users[i] = u
	}
	admin, userA, userB := users[0], users[1], users[2]

	plan := fleetPlan()
	seedStart := time.Now()
	n, err := seed(ctx, sd, plan)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d instances in %d RunInstances calls (reservations) in %s", n, len(plan), time.Since(seedStart).Round(time.Millisecond))
	if n != 2500 {
		t.Fatalf("seeded %d instances, want 2500", n)
	}
	if err := moto.EnableAuth(ctx); err != nil {
		t.Fatal(err)
	}
	adm := moto.SeederWith(admin.Credentials())

	// aws-a is shared with team-a, where discover-from-tags generates gen-api with it.
	secretA := awsSecret("aws-a", userA)
	secretA.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: "team-a"}
	createAndApply(t, ctx, env, upstreamsYAML,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		secretA, awsSecret("aws-b", userB))

	groupA := discovery.GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-a"}, Region: east}
	groupB := discovery.GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws-b"}, Region: west}
	rep := newReports()
	start := time.Now()
	d := startDiscoverer(t, ctx, env, moto, rep, groupA.Secret)

	// --- First refreshes: one paginated listing per group; the generated Upstreams of
	// discover-from-tags join group A and are published from its listing.
	ra := rep.refreshAfter(t, groupA, start, nil)
	rb := rep.refreshAfter(t, groupB, start, nil)
	if ra.Err != nil || rb.Err != nil {
		t.Fatalf("first refreshes: %v / %v", ra.Err, rb.Err)
	}
	t.Logf("first refresh: group A %d pages, %d instances in %s; group B %d pages, %d instances in %s",
		ra.Pages, ra.Instances, ra.Finished.Sub(ra.Started).Round(time.Millisecond), rb.Pages, rb.Instances, rb.Finished.Sub(rb.Started).Round(time.Millisecond))
	if ra.Pages != 2 || rb.Pages != 1 || ra.Instances != 1500 || rb.Instances != 1000 {
		t.Fatalf("group A: %d pages %d instances (want 2, 1500); group B: %d pages %d instances (want 1, 1000)", ra.Pages, ra.Instances, rb.Pages, rb.Instances)
	}
	for _, key := range []types.NamespacedName{{Namespace: "default", Name: "gen-web"}, {Namespace: "team-a", Name: "gen-api"}} {
		u := discovery.NewUpstreamObject()
		if err := c.Get(ctx, key, u); err != nil {
			t.Fatalf("generated upstream %s: %v", key, err)
		}
		if u.GetLabels()[discovery.LabelGenerated] != "true" {
			t.Fatalf("generated upstream %s is not labelled: %v", key, u.GetLabels())
		}
	}
	// Settled: a refresh of each group with nothing left to write.
	settled := func(r discovery.RefreshReport) bool { return r.Err == nil && r.Writes == 0 && r.Upstreams > 0 }
	ra = rep.refreshAfter(t, groupA, start, func(r discovery.RefreshReport) bool { return settled(r) && r.Upstreams == 4 })
	rb = rep.refreshAfter(t, groupB, start, settled)

	eastNow, westNow := fleetState(t, ctx, adm, east), fleetState(t, ctx, adm, west)
	checkAll := func(when string) {
		t.Helper()
		sameEndpoints(t, when+": web", published(t, c, "default", "web"),
			expected(eastNow, map[string]string{"app": "web", "env": "prod"}, nil, false, 8080, "web-port"))
		sameEndpoints(t, when+": blue", published(t, c, "default", "blue"),
			expected(eastNow, nil, []string{"team"}, true, 80, "port"))
		sameEndpoints(t, when+": api-eu", published(t, c, "default", "api-eu"),
			expected(westNow, map[string]string{"app": "api"}, nil, false, 80, "port"))
		sameEndpoints(t, when+": gen-web", published(t, c, "default", "gen-web"),
			expected(eastNow, map[string]string{discovery.TagUpstream: "gen-web"}, nil, false, 80, "port"))
	}
	checkAll("first refresh")
	sameEndpoints(t, "gen-api", published(t, c, "team-a", "gen-api"),
		expected(eastNow, map[string]string{discovery.TagUpstream: "gen-api", discovery.TagNamespace: "team-a"}, nil, false, 80, "port"))
	checkPublishedObjects(t, ctx, c)

	st := statusOf(t, c, "default", "web")
	t.Logf("web status: count %d, matched %d, skipped %d, overlap %d, case-insensitive only %d, iam %+v, consistency %s",
		st.Count, st.Matched, st.Skipped, st.Overlap, st.CaseInsensitiveOnly, *st.IAM, st.Consistency)
	if st.Skipped == 0 || st.SkippedInstances[0].Reason != discovered.SkipBadPortTag || st.Overlap == 0 || st.CaseInsensitiveOnly == 0 || st.Stale {
		t.Errorf("web status misses the audit: %+v", st)
	}
	if st.IAM.Decision != verdict.DecisionAllowed || st.IAM.Source != verdict.SourceListing || len(st.IAM.Sources) != 2 ||
		st.IAM.Sources[1].Source != verdict.SourceLocal || st.IAM.Sources[1].Decision != verdict.DecisionAllowed || st.IAM.Principal != userA.ARN {
		t.Errorf("web IAM audit = %+v, want allowed by the listing and by the local engine for %s", *st.IAM, userA.ARN)
	}
	if st.Consistency != string(policycheck.PermissiveCredentialsDiscerningFilters) {
		t.Errorf("web consistency = %s", st.Consistency)
	}
	if st := statusOf(t, c, "default", "blue"); st.Skipped == 0 || st.SkippedInstances[0].Reason != discovered.SkipBadPortTag {
		t.Errorf("blue status: %+v, want instances with port tag \"http\" skipped", st)
	}
	checkWebReport(t, ctx, c, st)

	// The reports went through the counting writer, so "no writes" below covers them too.
	if !slices.ContainsFunc(d.writer.Since(0), func(w string) bool { return strings.HasSuffix(w, " default/"+report.Name("web")) }) {
		t.Errorf("the report of default/web was not written through the counted writer: %v", d.writer.Since(0))
	}

	// --- An unchanged refresh writes nothing, and costs one DescribeInstances per page.
	writes := d.writer.Count()
	mark := time.Now()
	ra = rep.refreshAfter(t, groupA, mark, nil)
	rb = rep.refreshAfter(t, groupB, mark, nil)
	if ra.Err != nil || rb.Err != nil || ra.Writes != 0 || rb.Writes != 0 {
		t.Errorf("unchanged refresh: errors %v / %v, writes %d / %d", ra.Err, rb.Err, ra.Writes, rb.Writes)
	}
	if got := d.writer.Since(writes); len(got) != 0 {
		t.Errorf("unchanged refreshes wrote to the API server: %v", got)
	}
	if ra.Calls != ra.Pages || rb.Calls != rb.Pages || ra.Calls+rb.Calls != 3 {
		t.Errorf("AWS calls per refresh: A %d calls for %d pages, B %d calls for %d pages; want 2 + 1", ra.Calls, ra.Pages, rb.Calls, rb.Pages)
	}

	// --- Tag an instance into web and one out of it, stop one: the next refresh shows it.
	var into, outOf, stop string
	for _, in := range eastNow {
		switch {
		case into == "" && in.Tags["app"] == "api" && in.Tags["env"] == "prod" && in.Tags["web-port"] == "":
			into = in.ID
		case outOf == "" && in.Tags["app"] == "web" && in.Tags["env"] == "prod" && in.Tags["web-port"] == "":
			outOf = in.ID
		case stop == "" && outOf != "" && in.ID != outOf && in.Tags["app"] == "web" && in.Tags["env"] == "prod" && in.Tags["web-port"] == "":
			stop = in.ID
		}
	}
	if err := adm.CreateTags(ctx, east, []string{into}, map[string]string{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	if err := adm.DeleteTags(ctx, east, []string{outOf}, "app"); err != nil {
		t.Fatal(err)
	}
	if err := adm.StopInstances(ctx, east, stop); err != nil {
		t.Fatal(err)
	}
	mark = time.Now()
	if ra = rep.refreshAfter(t, groupA, mark, nil); ra.Err != nil || ra.Writes == 0 {
		t.Fatalf("refresh after tagging: err %v, %d writes", ra.Err, ra.Writes)
	}
	eastNow = fleetState(t, ctx, adm, east)
	webNow := published(t, c, "default", "web")
	for _, in := range eastNow {
		want, which := false, ""
		switch in.ID {
		case into:
			want, which = true, "tagged into web"
		case outOf:
			which = "tagged out of web"
		case stop:
			which = "stopped"
		default:
			continue
		}
		if _, got := webNow[in.ID]; got != want {
			t.Errorf("instance %s (%s): published in web = %v, want %v", in.ID, which, got, want)
		}
	}
	checkAll("after tagging and stopping")

	// --- Group B's access key is revoked: its endpoints stay, marked stale, while group A keeps
	// updating.
	apiBefore := published(t, c, "default", "api-eu")
	if err := adm.DeleteAccessKey(ctx, userB.Name, userB.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	var again string
	for _, in := range eastNow {
		if in.State == "running" && in.Tags["app"] == "api" && in.Tags["env"] == "prod" && in.Tags["web-port"] == "" && in.ID != into {
			again = in.ID
			break
		}
	}
	if err := adm.CreateTags(ctx, east, []string{again}, map[string]string{"app": "web"}); err != nil {
		t.Fatal(err)
	}
	mark = time.Now()
	rb = rep.refreshAfter(t, groupB, mark, nil)
	if rb.Err == nil || !rb.Stale || !strings.Contains(rb.Err.Error(), "AuthFailure") {
		t.Fatalf("revoked group B: err %v, stale %v", rb.Err, rb.Stale)
	}
	if ra = rep.refreshAfter(t, groupA, mark, nil); ra.Err != nil {
		t.Fatalf("group A failed while B was revoked: %v", ra.Err)
	}
	eastNow = fleetState(t, ctx, adm, east)
	checkAll("group B revoked")
	if got := published(t, c, "default", "api-eu"); len(got) != len(apiBefore) {
		t.Errorf("revoked group B lost endpoints: %d, had %d", len(got), len(apiBefore))
	}
	stB := statusOf(t, c, "default", "api-eu")
	if !stB.Stale || stB.StaleSince == "" || !strings.Contains(stB.LastError, "AuthFailure") || stB.Count != len(apiBefore) {
		t.Errorf("api-eu status while revoked: %+v", stB)
	}
	var svc corev1.Service
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: discovery.ServiceName("api-eu")}, &svc); err != nil || svc.Annotations[discovery.AnnotationStaleSince] == "" {
		t.Errorf("api-eu service not marked stale: %v %v", err, svc.Annotations)
	}
	if st := statusOf(t, c, "default", "web"); st.Stale {
		t.Errorf("web (group A) is marked stale: %+v", st)
	}
	if v := metricValue(t, d.metrics, "ec2guard_discoverer_stale_groups", nil); v != 1 {
		t.Errorf("stale groups metric = %v, want 1", v)
	}

	// --- discover-from-tags: no instance carries gen-api any more, so the next refresh deletes
	// the generated Upstream and what was published for it.
	var genAPI []string
	for _, in := range eastNow {
		if in.Tags[discovery.TagUpstream] == "gen-api" {
			genAPI = append(genAPI, in.ID)
		}
	}
	if err := adm.DeleteTags(ctx, east, genAPI, discovery.TagUpstream); err != nil {
		t.Fatal(err)
	}
	mark = time.Now()
	rep.refreshAfter(t, groupA, mark, nil)
	if err := c.Get(ctx, types.NamespacedName{Namespace: "team-a", Name: "gen-api"}, discovery.NewUpstreamObject()); !apierrors.IsNotFound(err) {
		t.Fatalf("team-a/gen-api after its tag disappeared: %v", err)
	}
	rep.removed(t, "team-a/gen-api")
	if got := published(t, c, "team-a", "gen-api"); len(got) != 0 {
		t.Errorf("%d endpoints left for the deleted generated upstream", len(got))
	}

	// --- Deleting an Upstream deletes its Service and EndpointSlices (envtest runs no garbage
	// collector, so this is the discoverer's own cleanup; the owner references would let
	// Kubernetes do the same).
	if out, errOut, err := env.Kubectl(ctx, "delete", "upstream", "blue", "-n", "default"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s%s", err, out, errOut)
	}
	rep.removed(t, "default/blue")
	mark = time.Now()
	rep.refreshAfter(t, groupA, mark, nil)
	if got := published(t, c, "default", "blue"); len(got) != 0 {
		t.Errorf("%d endpoints left for the deleted upstream blue", len(got))
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: discovery.ServiceName("blue")}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("service of the deleted upstream blue: %v", err)
	}
	if _, err := getReport(ctx, c, "default", "blue"); !apierrors.IsNotFound(err) {
		t.Errorf("report of the deleted upstream blue: %v", err)
	}

	// --- Every DescribeInstances request that left the discoverer is a page of a refresh (or
	// the failed first page of the revoked group): calls = sum over refreshes of their calls.
	d.stop()
	// A page may be sent again by the SDK when net/http hands it a connection it is closing
	// (aws-sdk-go-v2#2737; seen on a loaded 2-core machine): at most the test's 3 attempts per
	// page, never one call per Upstream.
	var calls, pages, failed, resent int
	for _, r := range rep.all() {
		calls += r.Calls
		if r.Err == nil {
			pages += r.Pages
			resent += r.Calls - r.Pages
			if r.Calls < r.Pages || r.Calls > 3*r.Pages {
				t.Errorf("refresh %d of %s: %d calls for %d pages", r.Seq, r.Group, r.Calls, r.Pages)
			}
		} else {
			failed++
		}
	}
	if got := int(d.http.describe.Load()); got != calls {
		t.Errorf("%d DescribeInstances requests left the discoverer, the refresh reports count %d", got, calls)
	}
	t.Logf("%d refresh reports, %d DescribeInstances calls (%d pages of successful refreshes, %d pages sent again, %d failed refreshes), %d Kubernetes writes, total %s",
		len(rep.all()), calls, pages, resent, failed, d.writer.Count(), time.Since(start).Round(time.Millisecond))
	if v := metricValue(t, d.metrics, "ec2guard_discoverer_aws_calls_total", map[string]string{"api": "ec2:DescribeInstances"}); int(v) != calls {
		t.Errorf("aws_calls_total = %v, want %d", v, calls)
	}
	if v := metricValue(t, d.metrics, "ec2guard_discoverer_aws_calls_total", map[string]string{"result": "AuthFailure"}); v < 1 {
		t.Errorf("aws_calls_total{result=AuthFailure} = %v, want at least 1", v)
	}
	logs := d.logs.String()
	for _, u := range users {
		if strings.Contains(logs, u.SecretAccessKey) {
			t.Errorf("the discoverer's logs contain the secret access key of %s", u.Name)
		}
	}
}

// checkPublishedObjects checks what the API server holds besides the endpoints: selector-less
// Services, slice labels and owner references to the Upstreams.
func checkPublishedObjects(t *testing.T, ctx context.Context, c client.Client) {
	t.Helper()
	for _, name := range []string{"web", "blue", "api-eu", "gen-web"} {
		up := discovery.NewUpstreamObject()
		if err := c.Get(ctx, types.NamespacedName{Namespace: "default", Name: name}, up); err != nil {
			t.Fatal(err)
		}
		var svc corev1.Service
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: discovery.ServiceName(name)}, &svc); err != nil {
			t.Fatalf("service of %s: %v", name, err)
		}
		if len(svc.Spec.Selector) != 0 || len(svc.OwnerReferences) != 1 || svc.OwnerReferences[0].UID != up.GetUID() || svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("service of %s: selector %v, owners %+v, clusterIP %q (want headless)", name, svc.Spec.Selector, svc.OwnerReferences, svc.Spec.ClusterIP)
		}
		var l discoveryv1.EndpointSliceList
		if err := c.List(ctx, &l, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Items {
			o := s.OwnerReferences
			if s.Labels[discoveryv1.LabelManagedBy] != discovery.ManagedBy || len(o) != 1 || o[0].Kind != "Upstream" ||
				o[0].APIVersion != "gloo.solo.io/v1" || o[0].UID != up.GetUID() || o[0].Controller == nil || !*o[0].Controller {
				t.Errorf("slice %s: labels %v, owners %+v", s.Name, s.Labels, o)
			}
			if s.AddressType != discoveryv1.AddressTypeIPv4 || s.Endpoints[0].Hints == nil {
				t.Errorf("slice %s: address type %s, hints %+v", s.Name, s.AddressType, s.Endpoints[0].Hints)
			}
		}
	}
}
