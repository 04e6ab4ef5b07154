package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// TestCredentialBorrowing: a user who may edit Upstreams in team-a but may not read the Secret in
// default that an Upstream names can neither make the webhook use that Secret (no AWS call at all,
// counted at a proxy in front of the emulator) nor learn anything about it (principal, key id),
// through the real API server with `kubectl --as`. The API server runs with RBAC authorization
// (envtest's default), so the impersonated users' Roles apply to them and to the webhook's
// SubjectAccessReviews.
func TestCredentialBorrowing(t *testing.T) {
	k8senv.RequireEnv(t, k8senv.AssetsEnv)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	k8senv.RequireEnv(t, awsemu.EnvServer)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	bin := binproc.Build(t, "webhook")
	moto := awsemu.Start(t)
	aws := newCountingProxy(t, moto.Endpoint())
	env := k8senv.Start(t, k8senv.Options{
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{mutatingWebhook()},
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{validatingWebhook()},
	})
	b := &borrowing{env: env, aws: aws, dir: t.TempDir(), bin: bin}
	b.setup(t, moto)
	b.start(t)

	t.Run("denied create: no AWS call, nothing about the secret", b.deniedCreate)
	t.Run("pod identity is off by default", b.podIdentityOff)
	t.Run("a user who may read the secret creates the Upstream", b.allowedCreate)
	t.Run("denied updates: no AWS call, nothing about the secret", b.deniedUpdates)
	t.Run("metadata-only update is allowed without AWS", b.metadataOnlyUpdate)
	t.Run("secret that does not opt in is refused", b.secretNotShared)
	t.Run("access reviews are cached", b.accessReviewsCached)
	// Last: it removes the validating webhook for a while.
	t.Run("mutating patch for the denied user has no principal", b.mutatePatch)
	t.Run("logs and metrics hold no secret", b.noLeaks)
	// Last: they restart the webhook with other flags.
	t.Run("client-go's default rate limit throttles access reviews", b.throttledAtClientGoDefaults)
	t.Run("the default rate limit does not throttle them", b.notThrottledAtDefaults)
}

// start runs the webhook with the suite's flags and extra for the rest of t, and waits until the
// API server calls it.
func (b *borrowing) start(t *testing.T, extra ...string) {
	t.Helper()
	b.webhook = startWebhook(t, b.bin, b.env, b.aws.URL(), append([]string{
		"--secret-namespaces=default",
		// Nothing is reused from an earlier request: any use of the credentials shows as AWS calls.
		"--iam-cache-ttl=1ms", "--iam-unknown-ttl=1ms",
		"--log-level=debug",
	}, extra...)...)
	b.waitForWebhook(t)
}

type borrowing struct {
	env     *k8senv.Env
	aws     *countingProxy
	webhook *webhookProcess
	dir     string
	bin     string
	user    awsemu.User // the IAM user whose keys the secret holds
}

const (
	editor = "mallory" // may edit Upstreams in team-a, may not read secrets in default
	reader = "bob"     // may edit Upstreams in team-a and get default/gloo-tag-group1
)

func (b *borrowing) setup(t *testing.T, moto *awsemu.Server) {
	t.Helper()
	ctx := context.Background()
	sd := moto.Seeder()
	var err error
	if b.user, err = sd.CreateUser(ctx, "gloo-borrowed"); err != nil {
		t.Fatal(err)
	}
	if err := sd.PutUserPolicy(ctx, b.user.Name, "fixed-policy", readFile(t, "testdata/fixed-policy.json")); err != nil {
		t.Fatal(err)
	}
	c := b.env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
		t.Fatal(err)
	}
	secret := func(name, allowed string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			StringData: map[string]string{"aws_access_key_id": b.user.AccessKeyID, "aws_secret_access_key": b.user.SecretAccessKey}}
		if allowed != "" {
			s.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: allowed}
		}
		return s
	}
	objs := []client.Object{
		secret("gloo-tag-group1", "team-a"),
		secret("not-shared", ""),
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "upstream-editor"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"gloo.solo.io"}, Resources: []string{"upstreams"},
				Verbs: []string{"get", "list", "watch", "create", "update", "patch"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "upstream-editors"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "upstream-editor"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: editor},
				{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: reader}},
		},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "read-gloo-secrets"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
				ResourceNames: []string{"gloo-tag-group1", "not-shared"}, Verbs: []string{"get"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bob-reads-gloo-secrets"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-gloo-secrets"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: reader}},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	// The premise: the API server itself refuses mallory the secret and lets her edit Upstreams.
	for args, want := range map[string]string{
		"auth can-i get secret/gloo-tag-group1 -n default --as=" + editor:   "no",
		"auth can-i create upstreams.gloo.solo.io -n team-a --as=" + editor: "yes",
		"auth can-i update upstreams.gloo.solo.io -n team-a --as=" + editor: "yes",
		"auth can-i get secret/gloo-tag-group1 -n default --as=" + reader:   "yes",
	} {
		stdout, _, _ := b.kubectl(nil, strings.Fields(args)...)
		if strings.TrimSpace(stdout) != want {
			t.Fatalf("kubectl %s: %q, want %q", args, stdout, want)
		}
	}
}

// waitForWebhook waits until the API server calls the webhook: a server-side dry run of an
// Upstream without secretRef gets an answer with an ec2guard code.
func (b *borrowing) waitForWebhook(t *testing.T) {
	t.Helper()
	poll.Until(t, syncTimeout, "the webhook to answer", func() (bool, string) {
		_, stderr, _ := b.apply(t, "", b.upstream("probe", "", nil), "--dry-run=server")
		return strings.Contains(stderr, "EC2G"), stderr
	})
}

// upstream is an EC2 Upstream in team-a named name; secret "" omits secretRef; edit changes awsEc2.
func (b *borrowing) upstream(name, secret string, edit func(awsEc2 map[string]any)) map[string]any {
	awsEc2 := map[string]any{
		"region":  "us-east-1",
		"filters": []any{map[string]any{"kvPair": map[string]any{"key": "team", "value": "a"}}},
	}
	if secret != "" {
		awsEc2["secretRef"] = map[string]any{"name": secret, "namespace": "default"}
	}
	if edit != nil {
		edit(awsEc2)
	}
	return map[string]any{
		"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
		"metadata": map[string]any{"name": name, "namespace": "team-a"},
		"spec":     map[string]any{"awsEc2": awsEc2},
	}
}

// apply runs `kubectl apply -f` on obj as user ("" for the admin), counting the AWS calls made
// meanwhile.
func (b *borrowing) apply(t *testing.T, user string, obj map[string]any, extra ...string) (stdout, stderr string, err error) {
	t.Helper()
	raw, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(b.dir, "upstream.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"apply", "-f", path}, extra...)
	if user != "" {
		args = append([]string{"--as=" + user}, args...)
	}
	return b.kubectl(nil, args...)
}

func (b *borrowing) kubectl(_ io.Reader, args ...string) (string, string, error) {
	return (&e2e{env: b.env}).kubectl(args...)
}

// secretDerived are the strings only someone who may read the secret may learn.
func (b *borrowing) secretDerived() []string {
	return []string{b.user.ARN, b.user.Name, b.user.AccessKeyID, b.user.AccessKeyID[len(b.user.AccessKeyID)-4:], b.user.SecretAccessKey, "AKIA"}
}

func (b *borrowing) assertNothingDerived(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range b.secretDerived() {
		if strings.Contains(text, s) {
			t.Errorf("%s shows %q:\n%s", what, s, text)
		}
	}
}

// denied applies obj as mallory and expects a denial with exactly the given codes and no AWS call.
func (b *borrowing) denied(t *testing.T, obj map[string]any, codes string, extra ...string) string {
	t.Helper()
	before := b.aws.Count()
	_, stderr, err := b.apply(t, editor, obj, extra...)
	if err == nil {
		t.Fatalf("admitted for %s:\n%s", editor, stderr)
	}
	if got := strings.Join(problemCodes(stderr), ","); got != codes {
		t.Errorf("denial codes %q, want %q:\n%s", got, codes, stderr)
	}
	if n := b.aws.Count() - before; n != 0 {
		t.Errorf("%d AWS calls by the webhook for a request by a user who may not read the secret, want 0: %v", n, b.aws.Calls()[before:])
	}
	b.assertNothingDerived(t, "the denial", stderr)
	return stderr
}

func (b *borrowing) deniedCreate(t *testing.T) {
	msg := b.denied(t, b.upstream("borrowed", "gloo-tag-group1", nil), "EC2G401")
	if !strings.Contains(msg, `user "mallory" may not get secret default/gloo-tag-group1`) {
		t.Errorf("the denial does not say why:\n%s", msg)
	}
	withRole := b.upstream("borrowed", "gloo-tag-group1", func(a map[string]any) { a["roleArn"] = "arn:aws:iam::123456789012:role/anything" })
	b.denied(t, withRole, "EC2G401")
	b.denied(t, withRole, "EC2G401", "--dry-run=server")
	(&e2e{env: b.env}).mustNotExist(t, "team-a", "borrowed")
}

func (b *borrowing) podIdentityOff(t *testing.T) {
	msg := b.denied(t, b.upstream("pod-identity", "", nil), "EC2G405")
	if !strings.Contains(msg, "--pod-identity-namespaces") {
		t.Errorf("the denial does not name the flag:\n%s", msg)
	}
}

func (b *borrowing) allowedCreate(t *testing.T) {
	before := b.aws.Count()
	stdout, stderr, err := b.apply(t, reader, b.upstream("shared", "gloo-tag-group1", nil))
	if err != nil {
		t.Fatalf("bob, who may read the secret, was denied: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "created") {
		t.Errorf("stdout %q", stdout)
	}
	// The proxy does count: using the secret calls AWS.
	if b.aws.Count() == before {
		t.Error("no AWS call for an allowed create: the proxy does not see the webhook's calls")
	}
	if ann := ec2guardAnnotations(b.get(t, "shared")); ann[admission.AnnotationPrincipal] != b.user.ARN || ann[admission.AnnotationIAMDecision] != "allowed" {
		t.Errorf("annotations %v", ann)
	}
}

func (b *borrowing) deniedUpdates(t *testing.T) {
	for name, edit := range map[string]func(map[string]any){
		"filters widened": func(a map[string]any) { delete(a, "filters") },
		"roleArn added":   func(a map[string]any) { a["roleArn"] = "arn:aws:iam::123456789012:role/anything" },
		"region changed":  func(a map[string]any) { a["region"] = "eu-west-1" },
	} {
		t.Run(name, func(t *testing.T) {
			b.denied(t, b.upstream("shared", "gloo-tag-group1", edit), "EC2G401")
		})
	}
	if filters, _, _ := unstructured.NestedSlice(b.get(t, "shared").Object, "spec", "awsEc2", "filters"); len(filters) != 1 {
		t.Errorf("the stored filters changed: %v", filters)
	}
}

func (b *borrowing) metadataOnlyUpdate(t *testing.T) {
	before := b.aws.Count()
	_, stderr, err := b.kubectl(nil, "--as="+editor, "-n", "team-a", "label", "upstream", "shared", "tier=web")
	if err != nil {
		t.Fatalf("a label change by %s was denied: %v\n%s", editor, err, stderr)
	}
	_, stderr, err = b.kubectl(nil, "--as="+editor, "-n", "team-a", "annotate", "--overwrite", "upstream", "shared",
		admission.AnnotationIAMDecision+"=forged", "note=hello")
	if err != nil {
		t.Fatalf("an annotation change by %s was denied: %v\n%s", editor, err, stderr)
	}
	if n := b.aws.Count() - before; n != 0 {
		t.Errorf("%d AWS calls for metadata-only updates", n)
	}
	obj := b.get(t, "shared")
	if obj.GetLabels()["tier"] != "web" || obj.GetAnnotations()["note"] != "hello" {
		t.Errorf("metadata not updated: %v %v", obj.GetLabels(), obj.GetAnnotations())
	}
	if ann := ec2guardAnnotations(obj); ann[admission.AnnotationIAMDecision] != "allowed" {
		t.Errorf("a forged ec2guard annotation was kept: %v", ann)
	}
}

func (b *borrowing) secretNotShared(t *testing.T) {
	before := b.aws.Count()
	_, stderr, err := b.apply(t, reader, b.upstream("not-shared", "not-shared", nil))
	if err == nil {
		t.Fatal("a secret that does not opt in to team-a was accepted")
	}
	if got := strings.Join(problemCodes(stderr), ","); got != string(codes.SecretNotShared) {
		t.Errorf("codes %q:\n%s", got, stderr)
	}
	if !strings.Contains(stderr, "ec2guard.io/allowed-namespaces: team-a") {
		t.Errorf("the denial lacks the fix:\n%s", stderr)
	}
	if n := b.aws.Count() - before; n != 0 {
		t.Errorf("%d AWS calls with a secret that does not opt in", n)
	}
}

// mutatePatch: with only the mutating webhook registered, a server-side dry run returns the object
// as the mutating webhook patched it — for mallory it must carry no principal, and the webhook must
// not have called AWS.
func (b *borrowing) mutatePatch(t *testing.T) {
	ctx := context.Background()
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := b.env.Client.Get(ctx, client.ObjectKey{Name: "ec2guard"}, &vwc); err != nil {
		t.Fatal(err)
	}
	if err := b.env.Client.Delete(ctx, &vwc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		restored := vwc.DeepCopy()
		restored.ResourceVersion, restored.UID = "", ""
		if err := b.env.Client.Create(ctx, restored); err != nil {
			t.Errorf("restore the validating webhook: %v", err)
		}
	})
	obj := b.upstream("patched", "gloo-tag-group1", nil)
	var out string
	before := b.aws.Count()
	poll.Until(t, syncTimeout, "the API server to drop the validating webhook", func() (bool, string) {
		stdout, stderr, err := b.apply(t, editor, obj, "--dry-run=server", "-o", "yaml")
		out = stdout
		return err == nil, stderr
	})
	if n := b.aws.Count() - before; n != 0 {
		t.Errorf("%d AWS calls by the mutating webhook for %s", n, editor)
	}
	b.assertNothingDerived(t, "the mutated object", out)
	var got map[string]any
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	ann := ec2guardAnnotations(&unstructured.Unstructured{Object: got})
	if ann[admission.AnnotationPrincipal] != admission.PrincipalUnknown || ann[admission.AnnotationIAMDecision] != "unknown" {
		t.Errorf("mutated annotations for %s: %v", editor, ann)
	}
}

// accessReviewsCached: N dry-run creates by bob (each a mutating and a validating call, each asking
// whether bob may get the secret) send one SubjectAccessReview to the API server.
func (b *borrowing) accessReviewsCached(t *testing.T) {
	const n = 10
	reviews := func() int {
		return metricValue(t, b.webhook.metrics(t), `ec2guard_access_reviews_total{result="allowed"}`)
	}
	// The first apply may have to ask (an earlier answer may have expired).
	if _, stderr, err := b.apply(t, reader, b.upstream("cached-0", "gloo-tag-group1", nil), "--dry-run=server"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	before := reviews()
	for i := 1; i <= n; i++ {
		if _, stderr, err := b.apply(t, reader, b.upstream("cached-"+strconv.Itoa(i), "gloo-tag-group1", nil), "--dry-run=server"); err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
	}
	if got := reviews() - before; got != 0 {
		t.Errorf("%d SubjectAccessReviews for %d more requests by the same user for the same secret, want 0 (cached)", got, n)
	}
	page := b.webhook.metrics(t)
	if hits := metricValue(t, page, `ec2guard_access_review_cache_total{result="hit"}`); hits < 2*n {
		t.Errorf("%d access cache hits, want at least %d", hits, 2*n)
	}
}

func (b *borrowing) noLeaks(t *testing.T) {
	log, page := b.webhook.log(t), b.webhook.metrics(t)
	for _, out := range []string{log, page} {
		if strings.Contains(out, b.user.SecretAccessKey) {
			t.Error("the secret access key appears in the webhook's logs or metrics")
		}
	}
	// mallory's requests: no log record about them names the secret's principal or key.
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"user":"`+editor+`"`) {
			b.assertNothingDerived(t, "a log record of mallory's request", line)
		}
	}
}

// throttledAtClientGoDefaults confirms why cross-namespace admissions were slow: with client-go's
// default client-side limit (5 QPS, burst 10) and no answer cache, a burst of concurrent requests
// makes the webhook's SubjectAccessReviews wait in the API client's rate limiter.
func (b *borrowing) throttledAtClientGoDefaults(t *testing.T) {
	b.webhook.stopNow(t)
	b.start(t, "--kube-api-qps=5", "--kube-api-burst=10", "--access-cache-allowed-ttl=0", "--access-cache-denied-ttl=0")
	reviews, waited, failed := b.burst(t)
	// What users saw: requests denied with EC2G402 (the review's wait ran past the request) or
	// failing at the API server's webhook timeout.
	t.Logf("client-go defaults, no cache: %d SubjectAccessReviews, %d waited in the rate limiter, %d of the requests failed: %v",
		reviews, waited, len(failed), failed)
	if waited == 0 {
		t.Errorf("none of %d SubjectAccessReviews waited in the API client's rate limiter at 5 QPS, burst 10", reviews)
	}
}

// notThrottledAtDefaults: the same burst, same no cache, with the webhook's default limit
// (--kube-api-qps 100, --kube-api-burst 200): no review waits.
func (b *borrowing) notThrottledAtDefaults(t *testing.T) {
	b.webhook.stopNow(t)
	b.start(t, "--access-cache-allowed-ttl=0", "--access-cache-denied-ttl=0")
	reviews, waited, failed := b.burst(t)
	t.Logf("default limit, no cache: %d SubjectAccessReviews, %d waited in the rate limiter", reviews, waited)
	if waited != 0 {
		t.Errorf("%d of %d SubjectAccessReviews waited in the rate limiter at the default limit", waited, reviews)
	}
	for _, err := range failed {
		t.Errorf("dry-run create as %s: %v", reader, err)
	}
}

// burst sends concurrent server-side dry-run creates of cross-namespace Upstreams as bob (through
// the API server, impersonating bob, each with a group of its own so that no two ask the webhook
// the same question and share a review) and returns how many SubjectAccessReviews the webhook sent
// and how many of its POSTs waited in the client-side rate limiter (longer than its first bucket,
// 5ms).
func (b *borrowing) burst(t *testing.T) (reviews, waited int, failed []error) {
	const n = 30
	clients := make([]client.Client, n)
	for i := range clients {
		cfg := rest.CopyConfig(b.env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: reader, Groups: []string{"system:authenticated", fmt.Sprintf("burst-%d", i)}}
		cfg.QPS, cfg.Burst = 1000, 1000
		var err error
		if clients[i], err = client.New(cfg, client.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	sent := func(page string) int {
		n := 0
		for _, r := range []string{admission.AccessReviewAllowed, admission.AccessReviewDenied, admission.AccessReviewError} {
			n += metricValue(t, page, `ec2guard_access_reviews_total{result="`+r+`"}`)
		}
		return n
	}
	before := sent(b.webhook.metrics(t))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			u := &unstructured.Unstructured{Object: b.upstream(fmt.Sprintf("burst-%d", i), "gloo-tag-group1", nil)}
			if err := clients[i].Create(context.Background(), u, client.DryRunAll); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		failed = append(failed, err)
	}
	page := b.webhook.metrics(t)
	reviews = sent(page) - before
	if reviews < n {
		t.Fatalf("%d SubjectAccessReviews for %d requests without a cache, want at least %d", reviews, n, n)
	}
	var count, fast int
	for _, l := range strings.Split(page, "\n") {
		if !strings.Contains(l, `verb="POST"`) {
			continue
		}
		switch {
		case strings.HasPrefix(l, "rest_client_rate_limiter_duration_seconds_count{"):
			count += sampleValue(t, l)
		case strings.HasPrefix(l, "rest_client_rate_limiter_duration_seconds_bucket{") && strings.Contains(l, `le="0.005"`):
			fast += sampleValue(t, l)
		}
	}
	if count < reviews {
		t.Fatalf("the rate limiter metric counts %d POSTs, fewer than the %d reviews:\n%s", count, reviews, page)
	}
	return reviews, count - fast, failed
}

func sampleValue(t *testing.T, line string) int {
	t.Helper()
	i := strings.LastIndex(line, " ")
	f, err := strconv.ParseFloat(line[i+1:], 64)
	if err != nil {
		t.Fatalf("sample %q: %v", line, err)
	}
	return int(f)
}

func (b *borrowing) get(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	return (&e2e{env: b.env}).get(t, "team-a", name)
}

// problemCodes are the codes of a denial's `CODE field: ...` lines, in order.
func problemCodes(stderr string) []string {
	var out []string
	re := regexp.MustCompile(`^([A-Z][A-Z0-9_]+) spec\.`)
	for _, l := range strings.Split(stderr, "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// metricValue reads one sample (name with its labels, exactly as exposed) from a /metrics page.
func metricValue(t *testing.T, page, sample string) int {
	t.Helper()
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return int(f)
		}
	}
	return 0
}

// countingProxy is a reverse proxy in front of the emulator that records every AWS call the
// webhook makes (the service's action from the query API's Action parameter).
type countingProxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []string
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host // the request was signed for this host
	}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action := r.URL.Query().Get("Action")
		if action == "" && r.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			if q, err := url.ParseQuery(string(body)); err == nil {
				action = q.Get("Action")
			}
		}
		p.mu.Lock()
		p.calls = append(p.calls, fmt.Sprintf("%s %s", r.Host, action))
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) URL() string { return p.srv.URL }

func (p *countingProxy) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *countingProxy) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string{}, p.calls...)
}
