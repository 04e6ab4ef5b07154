// Package webhook_test is the end-to-end test of ec2guard's admission webhook: a real
// kube-apiserver and etcd (envtest), the real kubectl run as a process, moto as AWS, and the
// webhook binary (cmd/webhook) run as a process with the flags an install would give it.
package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

func TestMain(m *testing.M) {
	k8senv.LogTo(os.Stderr)
	os.Exit(m.Run())
}

const (
	iamDeadline = 2 * time.Second
	syncTimeout = 30 * time.Second
	// fixedClass is the consistency class of the tutorial Upstream with the fixed policy: the
	// credentials see every instance of us-east-1, the filters select some.
	fixedClass = "permissive-credentials-discerning-filters"
)

var upstreamGVK = schema.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"}

// e2e holds what the scenarios share.
type e2e struct {
	env     *k8senv.Env
	moto    *awsemu.Server
	webhook *webhookProcess
	seed    awsemu.User // has seed-policy.json
	fixed   awsemu.User // has fixed-policy.json
}

func TestWebhookEndToEnd(t *testing.T) {
	// Skip (or fail under EC2GUARD_INTEGRATION=1) before the slow parts when assets are missing.
	k8senv.RequireEnv(t, k8senv.AssetsEnv)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	k8senv.RequireEnv(t, awsemu.EnvServer)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	bin := binproc.Build(t, "webhook")
	moto := awsemu.Start(t)
	env := k8senv.Start(t, k8senv.Options{
		MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{mutatingWebhook()},
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{validatingWebhook()},
	})
	x := &e2e{env: env, moto: moto}
	x.seedAWS(t)
	x.setupCluster(t)
	x.webhook = startWebhook(t, bin, env, moto.Endpoint(),
		"--iam-deadline="+iamDeadline.String(),
		"--secret-namespaces=default",
		// Unknown results are not reused, so the outage case runs the deadline path in both calls.
		"--iam-unknown-ttl=1ms",
		"--log-level=debug",
	)
	x.waitForWebhook(t)

	// The order matters: the secret changes from the seed user's keys to the fixed user's, and the
	// outage comes last.
	t.Run("seed policy is rejected with the statement and the fix", x.seedPolicyRejected)
	t.Run("v1 shape gives the same rejection", x.v1ShapeSameRejection)
	t.Run("spec and secret errors are rejected with their codes", x.specErrorsRejected)
	t.Run("fixed policy is created with the four annotations", x.fixedPolicyCreated)
	t.Run("a dedicated-account secret makes credentials restrictive", x.dedicatedAccount)
	t.Run("cross-namespace secret needs get access", x.crossNamespaceSecret)
	t.Run("AWS down: created with iam-decision unknown and a warning", x.awsDown)
	t.Run("AWS hung: created with iam-decision unknown within the deadline", x.awsHung)
	t.Run("metrics and logs", x.metricsAndLogs)
	t.Run("serving certificate reloaded from disk", x.certReloaded)
}

func (x *e2e) seedAWS(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	sd := x.moto.Seeder()
	var err error
	if x.seed, err = sd.CreateUser(ctx, "gloo-seed"); err != nil {
		t.Fatal(err)
	}
	if err := sd.PutUserPolicy(ctx, x.seed.Name, "seed-policy", readFile(t, "testdata/seed-policy.json")); err != nil {
		t.Fatal(err)
	}
	if x.fixed, err = sd.CreateUser(ctx, "gloo-fixed"); err != nil {
		t.Fatal(err)
	}
	if err := sd.PutUserPolicy(ctx, x.fixed.Name, "fixed-policy", readFile(t, "testdata/fixed-policy.json")); err != nil {
		t.Fatal(err)
	}
}

// setupCluster creates the namespaces, the secrets (from testdata/seed-secret.yaml with the moto
// users' real keys) and the RBAC of the cross-namespace case.
func (x *e2e) setupCluster(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c := x.env.Client
	for _, ns := range []string{"gloo-system", "team-a"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, x.secret(t, "gloo-tag-group1", x.seed)); err != nil {
		t.Fatal(err)
	}
	// Used only once AWS is down, so no IAM result exists for them before.
	for _, name := range []string{"gloo-after-outage", "gloo-aws-hung"} {
		if err := c.Create(ctx, x.secret(t, name, x.fixed)); err != nil {
			t.Fatal(err)
		}
	}
	objs := []client.Object{
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "upstream-editor"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"gloo.solo.io"}, Resources: []string{"upstreams"},
				Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "upstream-editors"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "upstream-editor"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "alice"},
				{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bob"}},
		},
		&rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "read-gloo-secret"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
				ResourceNames: []string{"gloo-tag-group1"}, Verbs: []string{"get"}}},
		},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bob-reads-gloo-secret"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-gloo-secret"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "bob"}},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// secret is testdata/seed-secret.yaml (what glooctl writes) named name, holding user's keys.
func (x *e2e) secret(t *testing.T, name string, user awsemu.User) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := yaml.Unmarshal([]byte(readFile(t, "testdata/seed-secret.yaml")), &s); err != nil {
		t.Fatal(err)
	}
	s.Name = name
	// The Upstreams of these tests are in gloo-system and team-a: the secret opts in to both.
	s.Annotations[ec2.AnnotationSecretAllowedNamespaces] = "gloo-system,team-a"
	s.StringData = map[string]string{"aws_access_key_id": user.AccessKeyID, "aws_secret_access_key": user.SecretAccessKey}
	return &s
}

// waitForWebhook waits until the API server calls the webhook and the webhook's Secret cache holds
// the seed secret: a server-side dry run of the tutorial Upstream is then rejected for its IAM policy
// (dry runs change nothing; their IAM result is the one the real apply reuses).
func (x *e2e) waitForWebhook(t *testing.T) {
	t.Helper()
	poll.Until(t, syncTimeout, "the webhook to judge the tutorial Upstream by its IAM policy", func() (bool, string) {
		_, stderr, _ := x.kubectl("apply", "--dry-run=server", "-f", "testdata/seed-upstream-demo.yaml")
		return strings.Contains(stderr, string(codes.IAMImplicitDeny)), stderr
	})
}

func (x *e2e) seedPolicyRejected(t *testing.T) {
	_, stderr, err := x.kubectl("apply", "-f", "testdata/seed-upstream-demo.yaml")
	if err == nil {
		t.Fatalf("the seed policy's Upstream was created:\n%s", stderr)
	}
	t.Logf("kubectl apply:\n%s", stderr)
	for _, want := range []string{
		`denied the request: ec2guard: EC2 Upstream gloo-system/ec2-demo-upstream has 3 problems:`,
		"EC2G501 spec.upstreamSpec.awsEc2.secretRef: " + x.seed.ARN + " may not call ec2:DescribeInstances in us-east-1",
		// names the statement and its policy
		`RESOURCE_MISMATCH spec.upstreamSpec.awsEc2.secretRef: statement #0 of identity policy "inline policy seed-policy of user/gloo-seed"`,
		// DescribeInstances needs Resource "*"
		`AWS authorizes it against Resource "*"`, `set "Resource": "*"`,
		// the tag condition never applies
		`UNSUPPORTED_CONDITION_KEY spec.upstreamSpec.awsEc2.secretRef: statement #0`, "ec2:ResourceTag/Owner", "the statement never applies",
		"keep tag scoping in the Upstream's filters",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the denial lacks %q", want)
		}
	}
	x.mustNotExist(t, "gloo-system", "ec2-demo-upstream")
}

func (x *e2e) v1ShapeSameRejection(t *testing.T) {
	_, legacy, err := x.kubectl("apply", "--dry-run=server", "-f", "testdata/seed-upstream-demo.yaml")
	if err == nil {
		t.Fatal("legacy shape accepted")
	}
	_, v1, err := x.kubectl("apply", "-f", "testdata/seed-upstream-demo-v1.yaml")
	if err == nil {
		t.Fatal("v1 shape accepted")
	}
	got, want := problemLines(v1), problemLines(strings.ReplaceAll(legacy, "spec.upstreamSpec.awsEc2", "spec.awsEc2"))
	if len(got) != 3 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("v1 problems\n%s\nwant the legacy shape's\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func (x *e2e) specErrorsRejected(t *testing.T) {
	for file, wantLine := range map[string]string{
		"testdata/both-key-kvpair.yaml":  "EC2G101 spec.awsEc2.filters[0]: ",
		"testdata/bad-region.yaml":       "EC2G202 spec.awsEc2.region: ",
		"testdata/missing-secret.yaml":   "EC2G301 spec.awsEc2.secretRef: secret default/no-such-secret not found",
		"testdata/unwatched-secret.yaml": "EC2G403 spec.awsEc2.secretRef: secret gloo-system/gloo-tag-group1 is in a namespace ec2guard does not read Secrets from",
	} {
		_, stderr, err := x.kubectl("apply", "-f", file)
		if err == nil {
			t.Errorf("%s: created", file)
			continue
		}
		if !strings.Contains(stderr, "\n"+wantLine) || !strings.Contains(stderr, " — ") {
			t.Errorf("%s: the denial lacks the line %q with its fix:\n%s", file, wantLine, stderr)
		}
	}
}

func (x *e2e) fixedPolicyCreated(t *testing.T) {
	ctx := context.Background()
	var s corev1.Secret
	if err := x.env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "gloo-tag-group1"}, &s); err != nil {
		t.Fatal(err)
	}
	s.StringData = map[string]string{"aws_access_key_id": x.fixed.AccessKeyID, "aws_secret_access_key": x.fixed.SecretAccessKey}
	if err := x.env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	// The webhook sees the new secret version through its informer a moment later.
	poll.Until(t, syncTimeout, "the webhook to see the updated secret", func() (bool, string) {
		_, stderr, err := x.kubectl("apply", "--dry-run=server", "-f", "testdata/seed-upstream-demo.yaml")
		return err == nil, stderr
	})
	want := map[string]string{
		admission.AnnotationPrincipal:   x.fixed.ARN,
		admission.AnnotationIAMDecision: "allowed",
		admission.AnnotationIAMSource:   "local",
		admission.AnnotationConsistency: fixedClass,
	}
	for _, file := range []string{"testdata/seed-upstream-demo.yaml", "testdata/seed-upstream-demo-v1.yaml"} {
		stdout, stderr, err := x.kubectl("apply", "-f", file)
		if err != nil {
			t.Fatalf("%s: %v\n%s", file, err, stderr)
		}
		if !strings.Contains(stdout, "upstream.gloo.solo.io/ec2-demo-upstream created") || strings.Contains(stderr, "Warning") {
			t.Errorf("%s: stdout %q, stderr %q; want created without warnings", file, stdout, stderr)
		}
		obj := x.get(t, "gloo-system", "ec2-demo-upstream")
		ann := ec2guardAnnotations(obj)
		if fmt.Sprint(ann) != fmt.Sprint(want) {
			t.Errorf("%s: annotations %v, want %v", file, ann, want)
		}
		if _, found, _ := unstructured.NestedMap(obj.Object, "spec"); !found {
			t.Errorf("%s: spec lost", file)
		}
		if _, _, err := x.kubectl("delete", "-f", file); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
}

func (x *e2e) crossNamespaceSecret(t *testing.T) {
	_, stderr, err := x.kubectl("--as=alice", "apply", "-f", "testdata/team-a-upstream.yaml")
	if err == nil {
		t.Fatal("alice borrowed a secret she cannot read")
	}
	if !strings.Contains(stderr, `EC2G401 spec.awsEc2.secretRef: user "alice" may not get secret default/gloo-tag-group1`) {
		t.Errorf("alice's denial:\n%s", stderr)
	}
	x.mustNotExist(t, "team-a", "team-a-ec2")

	stdout, stderr, err := x.kubectl("--as=bob", "apply", "-f", "testdata/team-a-upstream.yaml")
	if err != nil {
		t.Fatalf("bob, who may read the secret, was denied: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "created") {
		t.Errorf("bob: %s", stdout)
	}
	if ann := ec2guardAnnotations(x.get(t, "team-a", "team-a-ec2")); ann[admission.AnnotationIAMDecision] != "allowed" {
		t.Errorf("bob's Upstream annotations %v", ann)
	}
}

// awsDown: moto is stopped, so AWS calls fail at once (connection refused).
func (x *e2e) awsDown(t *testing.T) {
	x.moto.Stop()
	x.applyWithoutAWS(t, "testdata/after-outage.yaml", "after-outage")
}

// awsHung: the emulator's port accepts connections and never answers, so only the IAM deadline
// ends the webhook's wait.
func (x *e2e) awsHung(t *testing.T) {
	blackHole(t, strings.TrimPrefix(x.moto.Endpoint(), "http://"))
	x.applyWithoutAWS(t, "testdata/aws-hung.yaml", "aws-hung")
}

func (x *e2e) applyWithoutAWS(t *testing.T, file, name string) {
	start := time.Now()
	stdout, stderr, err := x.kubectl("apply", "-f", file)
	elapsed := time.Since(start)
	// With failurePolicy Fail and timeoutSeconds 5 the apply only succeeds when both webhooks
	// answered in time, which they do because they stop waiting on AWS at --iam-deadline.
	if err != nil {
		t.Fatalf("apply without AWS failed: %v\n%s", err, stderr)
	}
	t.Logf("apply without AWS took %s (IAM deadline %s per webhook call, webhook timeout %ds)", elapsed.Round(time.Millisecond), iamDeadline, timeoutSeconds)
	if !strings.Contains(stdout, "created") {
		t.Errorf("stdout %q", stdout)
	}
	warn := regexp.MustCompile(`(?m)^Warning: (EC2G503 secretRef: IAM decision unknown.*)$`).FindStringSubmatch(stderr)
	if warn == nil {
		t.Fatalf("no EC2G503 warning in:\n%s", stderr)
	}
	if n := len([]rune(warn[1])); n > admission.MaxWarningLength {
		t.Errorf("warning of %d characters: %s", n, warn[1])
	}
	ann := ec2guardAnnotations(x.get(t, "gloo-system", name))
	want := map[string]string{
		admission.AnnotationPrincipal: admission.PrincipalUnknown, admission.AnnotationIAMDecision: "unknown",
		admission.AnnotationIAMSource: "none", admission.AnnotationConsistency: admission.ConsistencyUnknown,
	}
	if fmt.Sprint(ann) != fmt.Sprint(want) {
		t.Errorf("annotations %v, want %v", ann, want)
	}
}

func (x *e2e) metricsAndLogs(t *testing.T) {
	page := x.webhook.metrics(t)
	for _, want := range []string{
		`ec2guard_admission_check_results_total{check="iam-deny",code="EC2G501",outcome="deny"}`,
		`ec2guard_admission_check_results_total{check="secret-access",code="EC2G401",outcome="deny"}`,
		`ec2guard_admission_check_results_total{check="iam-unknown",code="EC2G503",outcome="warn"}`,
		`ec2guard_aws_calls_total{api="sts:GetCallerIdentity",result="ok"}`,
		`ec2guard_aws_calls_total{api="sts:GetCallerIdentity",result="network-error"}`,
		`ec2guard_iam_cache_requests_total{result="hit"}`,
		`ec2guard_admission_requests_total{kind="ec2",result="patched",webhook="mutate"}`,
		`controller_runtime_webhook_latency_seconds_bucket{webhook="/validate-upstream"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	log := x.webhook.log(t)
	for _, u := range []awsemu.User{x.seed, x.fixed} {
		if strings.Contains(log, u.SecretAccessKey) || strings.Contains(page, u.SecretAccessKey) {
			t.Errorf("the secret access key of %s appears in the webhook's logs or metrics", u.Name)
		}
	}
	if !strings.Contains(log, `"msg":"denied Upstream"`) {
		t.Error("the log has no structured denial record")
	}
}

// blackHole listens on addr (the stopped emulator's) and holds every connection open without
// answering, until the test ends.
func blackHole(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the emulator's address %s: %v", addr, err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
}

// kubectl runs kubectl as a process against the test API server.
func (x *e2e) kubectl(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return x.env.Kubectl(ctx, args...)
}

func (x *e2e) get(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(upstreamGVK)
	if err := x.env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err != nil {
		t.Fatalf("get Upstream %s/%s: %v", ns, name, err)
	}
	return u
}

func (x *e2e) mustNotExist(t *testing.T, ns, name string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(upstreamGVK)
	if err := x.env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, u); err == nil {
		t.Errorf("Upstream %s/%s exists", ns, name)
	}
}

// problemLines are the `CODE field: ...` lines of a denial, sorted.
func problemLines(stderr string) []string {
	var out []string
	re := regexp.MustCompile(`^[A-Z][A-Z0-9_]+ spec\.`)
	for _, l := range strings.Split(stderr, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// ec2guardAnnotations returns the ec2guard.io/ annotations.
func ec2guardAnnotations(u *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	for k, v := range u.GetAnnotations() {
		if strings.HasPrefix(k, "ec2guard.io/") {
			out[k] = v
		}
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
