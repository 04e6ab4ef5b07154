// Package admissionbench measures what ec2guard adds to `kubectl apply` of an EC2 Upstream: the real
// webhook binary is registered with the real kube-apiserver (the chart's validating and mutating
// configurations, rendered by helm), clients create and update Upstreams as a user bound to a
// narrow Role, and the same workload runs with the webhook configurations removed as the baseline
// of the same run. AWS is moto behind a proxy that adds latency to every call and counts them.
// TestAdmission asserts the harness's counts; BenchmarkAdmission (make bench-admission) prints the
// added-latency table and the CPU time per request of each process.
package admissionbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/awsfault"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/ec2guardproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

const (
	upstreamNS = "team-a"
	secretNS   = "default"
	user       = "alice"
)

// bench is a running setup.
type bench struct {
	env     *k8senv.Env
	moto    *awsemu.Server
	proxy   *awsfault.Proxy
	webhook *ec2guardproc.Process
	// as is a client authenticated as user (may edit Upstreams in upstreamNS, get secrets in
	// secretNS); admin is the envtest admin.
	as, admin client.Client
	policy    string
	// configs are the webhook configurations as the API server stores them (envtest rewrote their
	// client configuration to the local webhook server).
	validating *admissionregistrationv1.ValidatingWebhookConfiguration
	mutating   *admissionregistrationv1.MutatingWebhookConfiguration
	registered bool
	names      atomic.Int64
	secrets    atomic.Int64
}

func readRepoFile(tb testing.TB, rel string) string {
	tb.Helper()
	root, err := k8senv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func newBench(tb testing.TB) *bench {
	tb.Helper()
	k8senv.RequireEnv(tb, k8senv.AssetsEnv)
	k8senv.RequireEnv(tb, awsemu.EnvServer)
	b := &bench{policy: readRepoFile(tb, "examples/fixed-policy.json")}
	b.moto = awsemu.Start(tb)
	var err error
	if b.proxy, err = awsfault.Start(b.moto.Endpoint()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.proxy.Close)
	validating, mutating := chartWebhookConfigurations(tb)
	b.env = k8senv.Start(tb, k8senv.Options{ValidatingWebhooks: validating, MutatingWebhooks: mutating})
	cfg := rest.CopyConfig(b.env.Config)
	cfg.QPS, cfg.Burst = 5000, 10000
	if b.admin, err = client.New(cfg, client.Options{Scheme: b.env.Client.Scheme()}); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	b.setupRBAC(tb, ctx)
	userCfg, _ := b.env.AddUser(tb, user)
	userCfg.QPS, userCfg.Burst = 5000, 10000
	if b.as, err = client.New(userCfg, client.Options{Scheme: b.env.Client.Scheme()}); err != nil {
		tb.Fatal(err)
	}
	b.validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
	b.mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := b.admin.Get(ctx, client.ObjectKey{Name: "ec2guard"}, b.validating); err != nil {
		tb.Fatal(err)
	}
	if err := b.admin.Get(ctx, client.ObjectKey{Name: "ec2guard"}, b.mutating); err != nil {
		tb.Fatal(err)
	}
	b.registered = true

	b.webhook = ec2guardproc.StartWebhook(tb, b.env, b.proxy.URL(), "--log-level=info")
	return b
}

func (b *bench) setupRBAC(tb testing.TB, ctx context.Context) {
	tb.Helper()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: upstreamNS}},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: upstreamNS, Name: "upstream-editor"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"gloo.solo.io"}, Resources: []string{"upstreams"},
				Verbs: []string{"get", "list", "create", "update", "patch", "delete"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: upstreamNS, Name: "upstream-editors"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "upstream-editor"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: "read-aws-secrets"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: "alice-reads-aws-secrets"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-aws-secrets"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		},
	}
	for _, o := range objs {
		if err := b.admin.Create(ctx, o); err != nil {
			tb.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// newSecret seeds an IAM user with the fixed policy in moto and stores its keys in a Secret in
// secretNS that opts in to use from upstreamNS. It returns the Secret's name.
func (b *bench) newSecret(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	n := b.secrets.Add(1)
	name := fmt.Sprintf("aws-%03d", n)
	sd := b.moto.Seeder()
	u, err := sd.CreateUser(ctx, "bench-"+name)
	if err != nil {
		tb.Fatal(err)
	}
	if err := sd.PutUserPolicy(ctx, u.Name, "fixed-policy", b.policy); err != nil {
		tb.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: secretNS, Name: name,
			Annotations: map[string]string{"ec2guard.io/allowed-namespaces": upstreamNS}},
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{"aws_access_key_id": u.AccessKeyID, "aws_secret_access_key": u.SecretAccessKey},
	}
	if err := b.admin.Create(ctx, s); err != nil {
		tb.Fatal(err)
	}
	return name
}

// upstream is an EC2 Upstream in upstreamNS using secret (in secretNS); broken gives it a filter
// that is an error (an empty tag key), which the webhook denies.
func (b *bench) upstream(secret string, broken bool) *unstructured.Unstructured {
	u := discovery.NewUpstreamObject()
	u.SetNamespace(upstreamNS)
	u.SetName(fmt.Sprintf("web-%06d", b.names.Add(1)))
	key := "app"
	if broken {
		key = ""
	}
	u.Object["spec"] = map[string]any{"awsEc2": map[string]any{
		"region":    "us-east-1",
		"secretRef": map[string]any{"name": secret, "namespace": secretNS},
		"filters":   []any{map[string]any{"kvPair": map[string]any{"key": key, "value": "web"}}},
	}}
	return u
}

// setRegistered removes or restores both webhook configurations and waits until the API server
// acts on it: a broken Upstream is created (dry run) exactly when no webhook is registered.
func (b *bench) setRegistered(tb testing.TB, on bool, secret string) {
	tb.Helper()
	ctx := context.Background()
	if on == b.registered {
		return
	}
	if on {
		v, m := b.validating.DeepCopy(), b.mutating.DeepCopy()
		v.ResourceVersion, m.ResourceVersion = "", ""
		if err := b.admin.Create(ctx, v); err != nil {
			tb.Fatal(err)
		}
		if err := b.admin.Create(ctx, m); err != nil {
			tb.Fatal(err)
		}
	} else {
		if err := b.admin.Delete(ctx, b.validating.DeepCopy()); err != nil {
			tb.Fatal(err)
		}
		if err := b.admin.Delete(ctx, b.mutating.DeepCopy()); err != nil {
			tb.Fatal(err)
		}
	}
	b.registered = on
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		err := b.as.Create(ctx, b.upstream(secret, true), client.DryRunAll)
		if (err != nil) == on {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("the API server did not pick up the webhook configurations (registered=%v) within a minute", on)
}

// run has clients clients create an Upstream each and then update its filters until n requests
// were made in all; it returns every request's latency.
func (b *bench) run(tb testing.TB, clients, n int, secret string) []time.Duration {
	tb.Helper()
	ctx := context.Background()
	per := max(n/clients, 1)
	lat := make([][]time.Duration, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := b.upstream(secret, false)
			for i := range per {
				start := time.Now()
				var err error
				if i == 0 {
					err = b.as.Create(ctx, u)
				} else {
					spec := u.Object["spec"].(map[string]any)["awsEc2"].(map[string]any)
					spec["filters"] = []any{map[string]any{"kvPair": map[string]any{"key": "app", "value": fmt.Sprintf("web-%d", i)}}}
					err = b.as.Update(ctx, u)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d request %d: %w", c, i, err)
					return
				}
				lat[c] = append(lat[c], time.Since(start))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	return all
}

// burst has clients clients each create one Upstream with secret at the same moment.
func (b *bench) burst(tb testing.TB, clients int, secret string) []time.Duration {
	tb.Helper()
	ctx := context.Background()
	lat := make([]time.Duration, clients)
	start := make(chan struct{})
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		u := b.upstream(secret, false)
		go func() {
			defer wg.Done()
			<-start
			t := time.Now()
			if err := b.as.Create(ctx, u); err != nil {
				errs <- err
				return
			}
			lat[c] = time.Since(t)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return lat
}

// annotations reads the ec2guard.io annotations of the last Upstream created.
func (b *bench) lastAnnotations(tb testing.TB) map[string]string {
	tb.Helper()
	u := discovery.NewUpstreamObject()
	name := fmt.Sprintf("web-%06d", b.names.Load())
	if err := b.admin.Get(context.Background(), client.ObjectKey{Namespace: upstreamNS, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		tb.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range u.GetAnnotations() {
		if strings.HasPrefix(k, "ec2guard.io/") {
			out[k] = v
		}
	}
	return out
}

// apiserverMetrics scrapes the API server's /metrics as the admin.
func (b *bench) apiserverMetrics(tb testing.TB) binproc.Metrics {
	tb.Helper()
	hc, err := rest.HTTPClientFor(b.env.Config)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := hc.Get(strings.TrimSuffix(b.env.Config.Host, "/") + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	m, err := binproc.Parse(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// histogramQuantile estimates quantile q from the delta of cumulative buckets between two scrapes.
func histogramQuantile(q float64, before, after map[float64]uint64) float64 {
	bounds := make([]float64, 0, len(after))
	for ub := range after {
		bounds = append(bounds, ub)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 {
		return 0
	}
	totalCount := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if totalCount == 0 {
		return 0
	}
	rank := q * float64(totalCount)
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := float64(after[ub] - before[ub])
		if c >= rank {
			if c == prevCount {
				return ub
			}
			return prevBound + (ub-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevBound, prevCount = ub, c
	}
	return bounds[len(bounds)-1]
}

// waitWebhook waits until the API server calls the webhook: a broken Upstream is denied.
func (b *bench) waitWebhook(tb testing.TB, secret string) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := b.as.Create(context.Background(), b.upstream(secret, true), client.DryRunAll); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatal("the webhook did not deny a broken Upstream within a minute")
}
