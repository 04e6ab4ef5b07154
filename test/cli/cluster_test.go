package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

var upstreamGVK = schema.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"}

// bypassLabel keeps the webhook away from the Upstreams the test stores (some of them are ones the
// webhook rejects: they stand for what a cluster held before ec2guard was installed).
const bypassLabel = "cli-test.ec2guard.io/stored"

func validatingWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "ec2guard"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "validate-upstream.ec2guard.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Namespace: "ec2guard-system", Name: "ec2guard-webhook", Path: ptr.To(admission.ValidatePath)},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"gloo.solo.io"}, APIVersions: []string{"v1"},
					Resources: []string{"upstreams"}, Scope: ptr.To(admissionregistrationv1.NamespacedScope)},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: bypassLabel, Operator: metav1.LabelSelectorOpDoesNotExist}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
}

// cluster is a control plane with ec2guard's validating handler served through it, and moto.
type cluster struct {
	env  *k8senv.Env
	moto *awsemu.Server
	user awsemu.User // a moto IAM user with the fixed policy
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	k8senv.RequireEnv(t, k8senv.AssetsEnv)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	k8senv.RequireEnv(t, awsemu.EnvServer)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	moto := awsemu.Start(t)
	seed := moto.Seeder()
	user, err := seed.CreateUser(ctx, "gloo")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "fixed-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := seed.PutUserPolicy(ctx, "gloo", "fixed", string(policy)); err != nil {
		t.Fatal(err)
	}
	env := k8senv.Start(t, k8senv.Options{ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{validatingWebhook()}})
	for _, ns := range []string{"team-a", "team-b", "gloo-system"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return &cluster{env: env, moto: moto, user: user}
}

// serveWebhook serves the webhook's validating handler, wired as cmd/webhook wires it, with the IAM
// checks off (the CLI evaluates IAM only with --policy; the spec and secret checks are compared).
func (c *cluster) serveWebhook(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	metrics, err := admission.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	factory, err := awsclients.NewFactory(awsclients.Options{Endpoint: c.moto.Endpoint(), HTTPClient: awsclients.LoopbackOnlyHTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	collector, err := collect.New(collect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	iam, err := admission.NewIAMEvaluator(&admission.FactoryAWS{Factory: factory, Collector: collector}, engine,
		admission.IAMOptions{Deadline: 5 * time.Second}, metrics, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	enf := admission.DefaultEnforcement()
	for _, check := range []admission.Check{codes.CheckCredentials, codes.CheckIAMDeny, codes.CheckIAMUnknown, codes.CheckPermissiveNoFilters} {
		if enf, err = enf.With(check, admission.Off); err != nil {
			t.Fatal(err)
		}
	}
	reviewer := &admission.Reviewer{
		Secrets: &admission.CachedSecrets{Reader: c.env.Client},
		Access:  &admission.SubjectAccessReviewer{Client: c.env.Client},
		IAM:     iam,
	}
	h := admission.NewHandlers(&admission.Validator{Reviewer: reviewer, Enforcement: enf, Metrics: metrics, Log: logr.Discard()},
		&admission.Mutator{Reviewer: reviewer, Log: logr.Discard()}, metrics)
	srv := c.env.ServeWebhooks(t, map[string]http.Handler{admission.ValidatePath: &webhook.Admission{Handler: h.Validate}})
	probe := &unstructured.Unstructured{}
	probe.SetGroupVersionKind(upstreamGVK)
	probe.SetNamespace("default")
	probe.SetName("probe")
	if err := c.env.WaitForWebhook(ctx, srv, admission.ValidatePath, probe); err != nil {
		t.Fatal(err)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// secretManifest is a Gloo AWS secret; keys "swap" puts the secret key under the id's name.
func secretManifest(ns, name, keyID, secret string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: %s}\ntype: Opaque\n"+
		"stringData:\n  aws_access_key_id: %q\n  aws_secret_access_key: %q\n", name, ns, keyID, secret)
}

func upstreamManifest(ns, name, awsEc2 string) string {
	return fmt.Sprintf("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: %s, namespace: %s}\nspec:\n  awsEc2:\n%s", name, ns, awsEc2)
}

var codeRe = regexp.MustCompile(`EC2G\d{3}`)

// codeSet returns the sorted distinct EC2G codes in s.
func codeSet(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range codeRe.FindAllString(s, -1) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

type checkJSON struct {
	Results []struct {
		Upstream string   `json:"upstream"`
		Allowed  bool     `json:"allowed"`
		Warnings []string `json:"warnings"`
		Errors   []struct {
			Code string `json:"code"`
		} `json:"errors"`
	} `json:"results"`
}

func decodeCheck(t *testing.T, r result) checkJSON {
	t.Helper()
	var out checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("check -o json output does not decode: %v\n%s", err, r)
	}
	return out
}

// TestCheckFromClusterMatchesWebhook stores Upstreams a cluster may hold (good ones and ones the
// webhook rejects, stored past it as before an install), asks the webhook for its verdict on each
// through the real API server (kubectl apply --dry-run=server), and checks that
// `ec2guard check --from-cluster` gives the same verdict and the same codes for each.
func TestCheckFromClusterMatchesWebhook(t *testing.T) {
	c := startCluster(t)
	c.serveWebhook(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	key, secret := c.user.AccessKeyID, c.user.SecretAccessKey
	secrets := []string{
		secretManifest("team-a", "aws", key, secret),
		secretManifest("team-a", "swapped", secret, key),
		secretManifest("team-b", "aws", key, secret),
		secretManifest("default", "gloo-tag-group1", key, secret),
	}
	for _, s := range secrets {
		if r := runCmd(t, "", nil, os.Getenv(k8senv.KubectlEnv), "--kubeconfig", c.env.KubeconfigPath, "apply", "-f", writeFile(t, t.TempDir(), "s.yaml", s)); r.code != 0 {
			t.Fatalf("apply secret: %s", r)
		}
	}
	ref := func(ns, name string) string {
		return fmt.Sprintf("    secretRef: {name: %s, namespace: %s}\n", name, ns)
	}
	filters := "    filters:\n    - kvPair: {key: app, value: web}\n"
	cases := []struct{ ns, name, awsEc2 string }{
		{"team-a", "good", "    region: us-east-1\n" + ref("team-a", "aws") + filters},
		{"team-a", "no-region", ref("team-a", "aws") + filters},
		{"team-a", "bad-region", "    region: us-east-l\n" + ref("team-a", "aws") + filters},
		{"team-a", "missing-secret", "    region: us-east-1\n" + ref("team-a", "nope") + filters},
		{"team-a", "swapped-keys", "    region: us-east-1\n" + ref("team-a", "swapped") + filters},
		{"team-a", "key-case", "    region: us-east-1\n" + ref("team-a", "aws") + "    filters:\n    - kvPair: {key: App, value: web}\n"},
		{"team-a", "duplicate-filter", "    region: us-east-1\n" + ref("team-a", "aws") + filters + "    - kvPair: {key: app, value: web}\n"},
		{"team-a", "unknown-field", "    region: us-east-1\n    regoin: us-east-2\n" + ref("team-a", "aws") + filters},
		{"team-a", "port-string", "    region: us-east-1\n    port: \"80\"\n" + ref("team-a", "aws") + filters},
		{"team-b", "no-filters", "    region: eu-west-1\n" + ref("team-b", "aws")},
		{"gloo-system", "cross-namespace", "    region: us-east-1\n" + ref("default", "gloo-tag-group1") + filters},
	}
	type verdict struct {
		allowed bool
		codes   []string
	}
	webhookSays := map[string]verdict{}
	for _, tc := range cases {
		doc := upstreamManifest(tc.ns, tc.name, tc.awsEc2)
		path := writeFile(t, t.TempDir(), tc.name+".yaml", doc)
		r := runCmd(t, "", nil, os.Getenv(k8senv.KubectlEnv), "--kubeconfig", c.env.KubeconfigPath, "apply", "--dry-run=server", "-f", path)
		if r.code != 0 && !strings.Contains(r.stderr, "admission webhook") {
			t.Fatalf("%s: kubectl apply --dry-run=server failed without the webhook's answer: %s", tc.name, r)
		}
		webhookSays[tc.ns+"/"+tc.name] = verdict{allowed: r.code == 0, codes: codeSet(r.stdout + r.stderr)}
		// Store it past the webhook.
		var obj unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatal(err)
		}
		obj.SetLabels(map[string]string{bypassLabel: "true"})
		if err := c.env.Client.Create(ctx, &obj); err != nil {
			t.Fatalf("store %s: %v", tc.name, err)
		}
	}
	// The scenario covers both verdicts, warnings and errors.
	if v := webhookSays["team-a/good"]; !v.allowed || len(v.codes) != 0 {
		t.Fatalf("webhook on team-a/good: %+v", v)
	}
	if v := webhookSays["team-a/no-region"]; v.allowed || !reflect.DeepEqual(v.codes, []string{"EC2G201"}) {
		t.Fatalf("webhook on team-a/no-region: %+v", v)
	}
	if v := webhookSays["team-a/duplicate-filter"]; !v.allowed || !reflect.DeepEqual(v.codes, []string{"EC2G107"}) {
		t.Fatalf("webhook on team-a/duplicate-filter: %+v", v)
	}

	r := ec2guard(t, nil, "check", "--from-cluster", "-A", "--kubeconfig", c.env.KubeconfigPath, "-o", "json")
	if r.code != 1 {
		t.Fatalf("check --from-cluster -A: want exit 1 (some rejected): %s", r)
	}
	cliSays := map[string]verdict{}
	for _, res := range decodeCheck(t, r).Results {
		var codes []string
		for _, e := range res.Errors {
			codes = append(codes, e.Code)
		}
		for _, w := range res.Warnings {
			codes = append(codes, codeRe.FindString(w))
		}
		cliSays[res.Upstream] = verdict{allowed: res.Allowed, codes: codeSet(strings.Join(codes, " "))}
	}
	if len(cliSays) != len(cases) {
		t.Errorf("the CLI checked %d Upstreams, want %d: %v", len(cliSays), len(cases), cliSays)
	}
	for name, want := range webhookSays {
		t.Logf("%-30s webhook: allowed=%v %v", name, want.allowed, want.codes)
		if got, ok := cliSays[name]; !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: webhook says %+v, ec2guard check --from-cluster says %+v", name, want, got)
		}
	}
	for _, s := range []string{secret, secret[:12], secret[len(secret)-12:]} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Fatalf("check --from-cluster printed a secret value:\n%s", r)
		}
	}
	text := ec2guard(t, nil, "check", "--from-cluster", "-A", "--kubeconfig", c.env.KubeconfigPath)
	if text.code != 1 || !strings.Contains(text.stdout, "team-a/no-region (cluster; shape spec.awsEc2)\n  error EC2G201 spec.awsEc2.region: ") {
		t.Errorf("text output: %s", text)
	}
	if strings.Contains(text.stdout+text.stderr, secret[:12]) {
		t.Fatalf("text output prints a secret value")
	}

	t.Run("namespace from the kubeconfig context, -n, --context", func(t *testing.T) {
		kc := kubeconfigWithContexts(t, c.env.KubeconfigPath, map[string]string{"team-b-ctx": "team-b"})
		// The current context has no namespace: "default", which holds no Upstream.
		r := ec2guard(t, []string{"KUBECONFIG=" + kc}, "check", "--from-cluster")
		if r.code != 2 || !strings.Contains(r.stderr, "no EC2 Upstream found: there are no Upstreams in namespace default") {
			t.Errorf("default namespace: %s", r)
		}
		r = ec2guard(t, []string{"KUBECONFIG=" + kc}, "check", "--from-cluster", "--context", "team-b-ctx", "-ojson")
		if res := decodeCheck(t, r).Results; r.code != 0 || len(res) != 1 || res[0].Upstream != "team-b/no-filters" {
			t.Errorf("--context team-b-ctx: %s", r)
		}
		r = ec2guard(t, []string{"KUBECONFIG=" + kc}, "check", "-n", "team-a", "-o", "yaml")
		if r.code != 1 || strings.Count(r.stdout, "upstream: team-a/") != 9 {
			t.Errorf("-n team-a: %s", r)
		}
	})

	t.Run("a secret the user may not read is a warning", func(t *testing.T) {
		// A user who may list Upstreams but not read Secrets.
		_, kc := c.env.AddUser(t, "auditor")
		for _, args := range [][]string{
			{"create", "clusterrole", "upstream-reader", "--verb=get,list", "--resource=upstreams.gloo.solo.io"},
			{"create", "clusterrolebinding", "auditor-upstreams", "--clusterrole=upstream-reader", "--user=auditor"},
		} {
			if r := runCmd(t, "", nil, os.Getenv(k8senv.KubectlEnv), append([]string{"--kubeconfig", c.env.KubeconfigPath}, args...)...); r.code != 0 {
				t.Fatalf("kubectl %q: %s", args, r)
			}
		}
		r := ec2guard(t, nil, "check", "--kubeconfig", kc, "-n", "team-a", "-o", "json")
		var good []string
		for _, res := range decodeCheck(t, r).Results {
			if res.Upstream == "team-a/good" {
				good = res.Warnings
				if !res.Allowed {
					t.Errorf("team-a/good rejected for an unreadable secret: %s", r)
				}
			}
		}
		if len(good) != 1 || !strings.Contains(good[0], "EC2G301") || !strings.Contains(good[0], "could not be read with your kubeconfig (forbidden)") {
			t.Errorf("team-a/good warnings %q\n%s", good, r)
		}
	})
}

// kubeconfigWithContexts copies the kubeconfig at path and adds a context per name with that
// namespace (same cluster and user as the current context).
func kubeconfigWithContexts(t *testing.T, path string, namespaces map[string]string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cur := cfg.Contexts[cfg.CurrentContext]
	for name, ns := range namespaces {
		c := cur.DeepCopy()
		c.Namespace = ns
		cfg.Contexts[name] = c
	}
	out := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		t.Fatal(err)
	}
	return out
}
