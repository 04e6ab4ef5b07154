// Package chaos runs the real webhook and discoverer against the real API server and moto behind a
// fault-injecting proxy (test/harness/awsfault), and an API-server outage, and checks what users
// rely on: the webhook answers within its deadline (IAM unknown, the configured action), the
// discoverer keeps the last good endpoints of a failing credential group while the other groups
// keep publishing, nothing crashes, nothing is lost after recovery. At the end every output of the
// run is searched for the secrets' values (the leak scan).
package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/awsfault"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/ec2guardproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

const (
	ns     = "team-a"
	other  = "team-b"
	region = "us-east-1"
	// interval of the discoverer: every scenario waits a few of them.
	interval = 3 * time.Second
)

// chaos holds the running parts and everything the run printed, for the leak scan.
type chaos struct {
	env      *k8senv.Env
	moto     *awsemu.Server
	faults   *awsfault.Proxy
	api      *apiProxy
	webhook  *ec2guardproc.Process
	disc     *ec2guardproc.Process
	users    map[string]awsemu.User // by secret name
	policy   string
	outputMu sync.Mutex
	outputs  bytes.Buffer
	// malloryOut is what the API server answered mallory, who may not read any secret.
	malloryOut bytes.Buffer
}

func TestChaos(t *testing.T) {
	k8senv.RequireEnv(t, k8senv.AssetsEnv)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	k8senv.RequireEnv(t, awsemu.EnvServer)
	x := &chaos{users: map[string]awsemu.User{}}
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(root + "/examples/fixed-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	x.policy = string(policy)
	x.moto = awsemu.Start(t)
	if x.faults, err = awsfault.Start(x.moto.Endpoint()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.faults.Close)
	validating, mutating := ec2guardproc.WebhookConfigurations()
	x.env = k8senv.Start(t, k8senv.Options{ValidatingWebhooks: validating, MutatingWebhooks: mutating})
	apiURL, err := url.Parse(x.env.Config.Host)
	if err != nil || apiURL.Host == "" {
		t.Fatalf("API server address %q: %v", x.env.Config.Host, err)
	}
	x.api = startAPIProxy(t, apiURL.Host)
	kubeconfig := kubeconfigVia(t, x.env.KubeconfigPath, x.api.addr)
	x.setup(t)
	x.webhook = ec2guardproc.StartWebhook(t, x.env, x.faults.URL(), "--kubeconfig="+kubeconfig, "--iam-deadline=2s", "--iam-unknown-ttl=1ms")
	x.disc = ec2guardproc.StartDiscoverer(t, x.env, x.faults.URL(), "--kubeconfig="+kubeconfig,
		"--interval="+interval.String(), "--group-timeout=4s", "--max-backoff=6s", "--jitter=0.1")

	x.waitJudged(t)
	x.apply(t, x.upstream("a", "aws-a", "app", "a"), true)
	x.apply(t, x.upstream("b", "aws-b", "app", "b"), true)
	x.waitEndpoints(t, "a", 2)
	x.waitEndpoints(t, "b", 2)

	t.Run("the chart's helm test (ec2guard selftest) sees the webhook's verdict", x.selftest)
	t.Run("webhook answers within its deadline whatever IAM and STS do", x.webhookUnderIAMFaults)
	t.Run("a failing credential group keeps its endpoints and delays no other", x.discovererUnderEC2Faults)
	t.Run("API server outage: both processes recover", x.apiOutage)
	t.Run("a user who may not read a secret learns nothing of it", x.malloryLearnsNothing)
	t.Run("leak scan", x.leakScan)
}

// setup seeds two IAM users (the fixed policy) and two instances for each Upstream, the secrets in
// team-a, and mallory, who may edit Upstreams in team-b but read no secret.
func (x *chaos) setup(t *testing.T) {
	ctx := context.Background()
	for _, n := range []string{ns, other} {
		if err := x.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	x.newSecret(t, "aws-a")
	x.newSecret(t, "aws-b")
	for _, app := range []string{"a", "b"} {
		if _, err := x.moto.Seeder().RunInstances(ctx, region, 2, map[string]string{"app": app}); err != nil {
			t.Fatal(err)
		}
	}
	objs := []client.Object{
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "upstream-editor"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"gloo.solo.io"}, Resources: []string{"upstreams"},
				Verbs: []string{"get", "list", "create", "update", "patch"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "mallory-edits-upstreams"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "upstream-editor"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mallory"}},
		},
	}
	for _, o := range objs {
		if err := x.env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

// newSecret seeds an IAM user with the fixed policy and stores its keys in team-a; the Secret opts
// in to use from the namespaces in shareWith.
func (x *chaos) newSecret(t *testing.T, name string, shareWith ...string) {
	t.Helper()
	ctx := context.Background()
	sd := x.moto.Seeder()
	u, err := sd.CreateUser(ctx, "chaos-"+name)
	if err != nil {
		t.Fatal(err)
	}
	if err := sd.PutUserPolicy(ctx, u.Name, "fixed", x.policy); err != nil {
		t.Fatal(err)
	}
	x.users[name] = u
	meta := metav1.ObjectMeta{Namespace: ns, Name: name}
	if len(shareWith) > 0 {
		meta.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: strings.Join(shareWith, ",")}
	}
	s := &corev1.Secret{ObjectMeta: meta, Type: corev1.SecretTypeOpaque,
		StringData: map[string]string{"aws_access_key_id": u.AccessKeyID, "aws_secret_access_key": u.SecretAccessKey}}
	if err := x.env.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
}

func (x *chaos) upstream(name, secret, key, value string) string {
	return upstreamIn(ns, name, secret, key, value)
}

// upstreamIn is an EC2 Upstream in namespace upstreamNS using secret in team-a.
func upstreamIn(upstreamNS, name, secret, key, value string) string {
	return fmt.Sprintf(`apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: %s, namespace: %s}
spec:
  awsEc2:
    region: %s
    secretRef: {name: %s, namespace: %s}
    filters:
    - kvPair: {key: %q, value: %q}
`, name, upstreamNS, region, secret, ns, key, value)
}

// kubectl runs kubectl as the admin (or as --as users given in args) and keeps the output for the
// leak scan.
func (x *chaos) kubectl(input string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var in *strings.Reader
	if input != "" {
		in = strings.NewReader(input)
	} else {
		in = strings.NewReader("")
	}
	out, errOut, err := x.env.KubectlWithInput(ctx, in, args...)
	x.outputMu.Lock()
	fmt.Fprintf(&x.outputs, "$ kubectl %s\n%s%s\n", strings.Join(args, " "), out, errOut)
	x.outputMu.Unlock()
	return out, errOut, err
}

// apply applies a manifest and fails the test unless it was admitted (wantOK) or denied.
func (x *chaos) apply(t *testing.T, manifest string, wantOK bool) string {
	t.Helper()
	out, errOut, err := x.kubectl(manifest, "apply", "-f", "-")
	if (err == nil) != wantOK {
		t.Fatalf("kubectl apply: admitted=%v, want %v\n%s%s", err == nil, wantOK, out, errOut)
	}
	return out + errOut
}

// waitJudged waits until the webhook is called: a filter with an empty key is denied.
func (x *chaos) waitJudged(t *testing.T) {
	t.Helper()
	poll.Until(t, time.Minute, "the webhook to deny a broken Upstream", func() (bool, string) {
		_, errOut, err := x.kubectl(x.upstream("probe", "aws-a", "", "x"), "apply", "--dry-run=server", "-f", "-")
		return err != nil && strings.Contains(errOut, "denied"), errOut
	})
}

// endpoints returns the addresses published for Upstream name.
func (x *chaos) endpoints(t *testing.T, name string) map[string]bool {
	t.Helper()
	var l discoveryv1.EndpointSliceList
	u := discovery.NewUpstreamObject()
	if err := x.env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatal(err)
	}
	if err := x.env.Client.List(context.Background(), &l, client.InNamespace(ns), client.MatchingLabels{discovery.LabelUpstreamUID: string(u.GetUID())}); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, s := range l.Items {
		for _, e := range s.Endpoints {
			out[e.Addresses[0]] = true
		}
	}
	return out
}

func (x *chaos) waitEndpoints(t *testing.T, name string, n int) map[string]bool {
	t.Helper()
	var got map[string]bool
	poll.Until(t, 2*time.Minute, fmt.Sprintf("%d endpoints of %s", n, name), func() (bool, string) {
		got = x.endpoints(t, name)
		return len(got) == n, fmt.Sprintf("%d endpoints", len(got))
	})
	return got
}

// alive fails t if the webhook or the discoverer has exited.
func (x *chaos) alive(t *testing.T) {
	t.Helper()
	for name, p := range map[string]*ec2guardproc.Process{"webhook": x.webhook, "discoverer": x.disc} {
		if p.Exited() {
			t.Fatalf("the %s exited:\n%s", name, p.Tail(8<<10))
		}
	}
}

// selftest runs what the chart's helm test Pod runs, as the admin: exit 0 with EC2G301 named.
func (x *chaos) selftest(t *testing.T) {
	bin := binproc.Build(t, "ec2guard")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "selftest", "--kubeconfig="+x.env.KubeconfigPath, "-n", ns).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "EC2G301") {
		t.Fatalf("ec2guard selftest: %v\n%s", err, out)
	}
	// Nothing was stored: the probe is a dry run.
	list := discovery.NewUpstreamList()
	if err := x.env.Client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, u := range list.Items {
		if strings.HasPrefix(u.GetName(), "ec2guard-selftest") {
			t.Errorf("the selftest stored %s", u.GetName())
		}
	}
}

var kinds = []awsfault.Kind{awsfault.Throttle, awsfault.ServerError, awsfault.Hang, awsfault.Reset, awsfault.SlowBody}

// Each fault on IAM and STS: a new Upstream with new credentials is admitted (IAM unknown is a
// warning by default) and annotated unknown. Admission itself proves the webhook answered within
// the configuration's timeoutSeconds: with failurePolicy Fail a late answer is a failed apply.
func (x *chaos) webhookUnderIAMFaults(t *testing.T) {
	for i, k := range kinds {
		secret := fmt.Sprintf("aws-cold-%d", i)
		x.newSecret(t, secret)
		x.faults.SetFaults(awsfault.Fault{Kind: k, Service: "iam"}, awsfault.Fault{Kind: k, Service: "sts"},
			awsfault.Fault{Kind: k, Action: "DescribeInstances", AccessKeyID: x.users[secret].AccessKeyID})
		name := fmt.Sprintf("cold-%d", i)
		out := x.apply(t, x.upstream(name, secret, "app", "a"), true)
		u := discovery.NewUpstreamObject()
		if err := x.env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
			t.Fatal(err)
		}
		if got := u.GetAnnotations()["ec2guard.io/iam-decision"]; got != "unknown" {
			t.Errorf("%s: iam-decision %q, want unknown (apply said %s)", k, got, out)
		}
		if !strings.Contains(out, "EC2G503") {
			t.Errorf("%s: no EC2G503 warning in %q", k, out)
		}
	}
	x.faults.SetFaults()
	if inj := x.faults.Injected(); len(inj) != len(kinds) {
		t.Errorf("faults injected %v, want every kind", inj)
	}
	x.alive(t)
}

// Each fault on group A's DescribeInstances: A keeps its endpoints while B's new instance is
// published; after the faults end A's new instances are published too.
func (x *chaos) discovererUnderEC2Faults(t *testing.T) {
	ctx := context.Background()
	sd := x.moto.Seeder()
	aBefore := x.endpoints(t, "a")
	wantB := len(x.endpoints(t, "b"))
	for _, k := range kinds {
		x.faults.SetFaults(awsfault.Fault{Kind: k, Action: "DescribeInstances", AccessKeyID: x.users["aws-a"].AccessKeyID, ByteDelay: 50 * time.Millisecond})
		if _, err := sd.RunInstances(ctx, region, 1, map[string]string{"app": "a"}); err != nil {
			t.Fatal(err)
		}
		if _, err := sd.RunInstances(ctx, region, 1, map[string]string{"app": "b"}); err != nil {
			t.Fatal(err)
		}
		wantB++
		x.waitEndpoints(t, "b", wantB)
		if got := x.endpoints(t, "a"); len(got) != len(aBefore) {
			t.Errorf("%s on group A: its endpoints went from %d to %d; the last good ones must stay", k, len(aBefore), len(got))
		}
	}
	x.faults.SetFaults()
	x.waitEndpoints(t, "a", len(aBefore)+len(kinds))
	x.alive(t)
}

// The API server drops every connection for a while: both processes keep running and catch up.
func (x *chaos) apiOutage(t *testing.T) {
	want := len(x.endpoints(t, "b")) + 1
	x.api.Down()
	if _, err := x.moto.Seeder().RunInstances(context.Background(), region, 1, map[string]string{"app": "b"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * interval)
	x.api.Up(t)
	x.waitEndpoints(t, "b", want)
	x.waitJudged(t)
	x.alive(t)
}

// mallory may edit Upstreams in team-b but read no secret. Borrowing team-a's aws-m — by a create,
// by widening the filters of an Upstream that already uses it, by adding a roleArn — is denied with
// EC2G401 before the webhook touches the secret or AWS (its AWS call counter does not move), and
// nothing the API server answers her names aws-m's principal or key. Changing only labels stays
// allowed.
func (x *chaos) malloryLearnsNothing(t *testing.T) {
	// aws-m is shared with team-b by its owner; mallory may still not read it.
	x.newSecret(t, "aws-m", other)
	as := func(manifest string, args ...string) (string, bool) {
		before := x.webhookAWSCalls(t)
		out, errOut, err := x.kubectl(manifest, append(args, "--as=mallory")...)
		x.outputMu.Lock()
		x.malloryOut.WriteString(out + errOut)
		x.outputMu.Unlock()
		if calls := x.webhookAWSCalls(t) - before; calls != 0 && err != nil {
			t.Errorf("kubectl %v as mallory: denied, but the webhook made %v AWS calls with the secret first", args, calls)
		}
		return out + errOut, err == nil
	}
	borrowed := upstreamIn(other, "borrowed", "aws-m", "app", "a")
	for _, args := range [][]string{{"apply", "--dry-run=server", "-f", "-"}, {"apply", "-f", "-"}} {
		if out, ok := as(borrowed, args...); ok || !strings.Contains(out, "EC2G401") {
			t.Errorf("create as mallory (%v): admitted=%v, want EC2G401:\n%s", args, ok, out)
		}
	}
	// An Upstream an admin made with aws-m, which mallory may edit.
	// The webhook reads Secrets from its informer cache: aws-m shows there shortly after creation.
	poll.Until(t, 30*time.Second, "the admin's Upstream with the shared secret to be admitted", func() (bool, string) {
		out, errOut, err := x.kubectl(upstreamIn(other, "shared", "aws-m", "app", "a"), "apply", "-f", "-")
		return err == nil, out + errOut
	})
	widened := upstreamIn(other, "shared", "aws-m", "app", "*")
	if out, ok := as(widened, "apply", "-f", "-"); ok || !strings.Contains(out, "EC2G401") {
		t.Errorf("widening the filters as mallory: admitted=%v, want EC2G401:\n%s", ok, out)
	}
	withRole := strings.Replace(upstreamIn(other, "shared", "aws-m", "app", "a"), "    region:", "    roleArn: arn:aws:iam::123456789012:role/anything\n    region:", 1)
	if out, ok := as(withRole, "apply", "-f", "-"); ok || !strings.Contains(out, "EC2G401") {
		t.Errorf("adding a roleArn as mallory: admitted=%v, want EC2G401:\n%s", ok, out)
	}
	if out, ok := as("", "label", "upstreams.gloo.solo.io", "shared", "-n", other, "team=web"); !ok {
		t.Errorf("a label change as mallory was denied:\n%s", out)
	}
	u := x.users["aws-m"]
	for _, s := range []string{u.ARN, u.Name, u.AccessKeyID[:8], u.AccessKeyID[len(u.AccessKeyID)-4:]} {
		if strings.Contains(x.malloryOut.String(), s) {
			t.Errorf("an answer to mallory contains %q (of aws-m's principal or key):\n%s", s, x.malloryOut.String())
		}
	}
}

// webhookAWSCalls is the webhook's count of AWS calls so far.
func (x *chaos) webhookAWSCalls(t *testing.T) float64 {
	t.Helper()
	return x.webhook.Metrics(t).Sum(admission.MetricAWSCalls, nil)
}

// Every output of the run — kubectl's, both processes' logs and metrics, events, the Upstreams with
// their annotations, the consistency reports — is searched for every secret access key and access
// key id.
func (x *chaos) leakScan(t *testing.T) {
	var all bytes.Buffer
	x.outputMu.Lock()
	all.Write(x.outputs.Bytes())
	x.outputMu.Unlock()
	for _, p := range []*ec2guardproc.Process{x.webhook, x.disc} {
		log, err := p.Log()
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString(log)
		m, err := p.RawMetrics()
		if err != nil {
			t.Fatal(err)
		}
		all.WriteString(m)
	}
	for _, args := range [][]string{
		{"get", "events", "-A", "-o", "yaml"},
		{"get", "upstreams.gloo.solo.io", "-A", "-o", "yaml"},
		{"get", "reports.openreports.io", "-A", "-o", "yaml"},
		{"get", "endpointslices,services", "-A", "-o", "yaml"},
	} {
		out, errOut, err := x.kubectl("", args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, errOut)
		}
		all.WriteString(out)
	}
	var reports struct {
		Items []any `json:"items"`
	}
	out, _, _ := x.kubectl("", "get", "reports.openreports.io", "-A", "-o", "yaml")
	if err := yaml.Unmarshal([]byte(out), &reports); err != nil || len(reports.Items) == 0 {
		t.Errorf("no consistency report to scan (err %v): the scan would miss them", err)
	}
	text := all.String()
	if len(text) < 10_000 {
		t.Fatalf("only %d bytes of output to scan: the scan is not reading the run", len(text))
	}
	for name, u := range x.users {
		if strings.Contains(text, u.SecretAccessKey) {
			t.Errorf("the secret access key of %s appears in the run's outputs", name)
		}
		if strings.Contains(text, u.AccessKeyID) {
			t.Errorf("the whole access key id of %s (%s) appears in the run's outputs", name, u.AccessKeyID)
		}
	}
	t.Logf("scanned %d bytes of output for %d secrets", len(text), len(x.users))
}
