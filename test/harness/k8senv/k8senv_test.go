package k8senv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

func TestMain(m *testing.M) {
	k8senv.LogTo(os.Stderr)
	os.Exit(m.Run())
}

const (
	webhookPath = "/validate-upstream"
	// deniedRegion is the region the test webhook rejects.
	deniedRegion = "nowhere"
	// denyMessage is distinctive so the test can find it in kubectl's stderr.
	denyMessage = "k8senv-test-webhook: spec.awsEc2.region \"nowhere\" is refused by the test webhook"
)

var upstreamGVK = schema.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"}

// denyNowhere denies Upstreams whose spec.awsEc2.region is "nowhere" and allows the rest.
func denyNowhere(_ context.Context, req admission.Request) admission.Response {
	var obj map[string]any
	if err := json.Unmarshal(req.Object.Raw, &obj); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding %s: %w", req.Kind.Kind, err))
	}
	region, _, err := unstructured.NestedString(obj, "spec", "awsEc2", "region")
	if err != nil {
		return admission.Denied(fmt.Sprintf("spec.awsEc2.region: %v", err))
	}
	if region == deniedRegion {
		return admission.Denied(denyMessage)
	}
	return admission.Allowed("")
}

func upstreamWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "k8senv-test-upstreams"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "upstreams.k8senv-test.ec2guard.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				// envtest turns this into https://<local host:port>/validate-upstream.
				Service: &admissionregistrationv1.ServiceReference{
					Namespace: "default", Name: "k8senv-test", Path: ptr.To(webhookPath),
				},
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{"gloo.solo.io"},
					APIVersions: []string{"v1"},
					Resources:   []string{"upstreams"},
					Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func upstreamManifest(name, region string) string {
	return fmt.Sprintf(`apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: %s
  namespace: default
spec:
  awsEc2:
    region: %s
    filters:
      - kvPair: {key: app, value: web}
`, name, region)
}

func writeManifest(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return path
}

func probeUpstream() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(upstreamGVK)
	u.SetNamespace("default")
	u.SetName("k8senv-probe")
	return u
}

// TestKubectlApplyGoesThroughWebhook shows admission by a test-served webhook
// through the real API server, driven by the real kubectl binary.
func TestKubectlApplyGoesThroughWebhook(t *testing.T) {
	env := k8senv.Start(t, k8senv.Options{
		ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{upstreamWebhook()},
	})
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv := env.ServeWebhooks(t, map[string]http.Handler{
		webhookPath: &admission.Webhook{Handler: admission.HandlerFunc(denyNowhere)},
	})
	if err := env.WaitForWebhook(ctx, srv, webhookPath, probeUpstream()); err != nil {
		t.Fatal(err)
	}

	t.Run("crd installed", func(t *testing.T) {
		out, stderr, err := env.Kubectl(ctx, "get", "crd", "upstreams.gloo.solo.io", "-o", "jsonpath={.spec.names.shortNames}")
		if err != nil {
			t.Fatalf("%v\nstderr: %s", err, stderr)
		}
		if !strings.Contains(out, "us") {
			t.Fatalf("short names = %q, want them to contain \"us\"", out)
		}
	})

	t.Run("dry-run=server is denied", func(t *testing.T) {
		before := srv.Requests(webhookPath)
		path := writeManifest(t, "dry", upstreamManifest("dry-nowhere", deniedRegion))
		_, stderr, err := env.Kubectl(ctx, "apply", "--dry-run=server", "-f", path)
		if err == nil {
			t.Fatal("kubectl apply --dry-run=server of a denied Upstream succeeded")
		}
		if !strings.Contains(stderr, denyMessage) {
			t.Fatalf("stderr does not carry the webhook's message %q:\n%s", denyMessage, stderr)
		}
		if srv.Requests(webhookPath) <= before {
			t.Fatal("the webhook was not called for the dry run")
		}
	})

	t.Run("denied apply", func(t *testing.T) {
		path := writeManifest(t, "denied", upstreamManifest("denied", deniedRegion))
		_, stderr, err := env.Kubectl(ctx, "apply", "-f", path)
		if err == nil {
			t.Fatal("kubectl apply of a denied Upstream succeeded")
		}
		if !strings.Contains(stderr, denyMessage) {
			t.Fatalf("stderr does not carry the webhook's message %q:\n%s", denyMessage, stderr)
		}
		if !strings.Contains(stderr, "denied the request") {
			t.Errorf("stderr does not say the admission webhook denied the request:\n%s", stderr)
		}
		t.Logf("kubectl apply stderr: %s", stderr)
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(upstreamGVK)
		getErr := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "denied"}, u)
		if !apierrors.IsNotFound(getErr) {
			t.Fatalf("get denied Upstream: err = %v, want NotFound", getErr)
		}
	})

	t.Run("allowed apply", func(t *testing.T) {
		path := writeManifest(t, "allowed", upstreamManifest("allowed", "us-east-1"))
		if _, stderr, err := env.Kubectl(ctx, "apply", "-f", path); err != nil {
			t.Fatalf("%v\nstderr: %s", err, stderr)
		}
		out, stderr, err := env.Kubectl(ctx, "get", "us", "allowed", "-n", "default", "-o", "jsonpath={.spec.awsEc2.region}")
		if err != nil {
			t.Fatalf("%v\nstderr: %s", err, stderr)
		}
		if out != "us-east-1" {
			t.Fatalf("region of stored Upstream = %q, want us-east-1", out)
		}
	})

	t.Run("update to a denied region", func(t *testing.T) {
		_, stderr, err := env.Kubectl(ctx, "patch", "upstream", "allowed", "-n", "default", "--type=merge",
			"-p", `{"spec":{"awsEc2":{"region":"nowhere"}}}`)
		if err == nil {
			t.Fatal("patching an Upstream to a denied region succeeded")
		}
		if !strings.Contains(stderr, denyMessage) {
			t.Fatalf("stderr does not carry the webhook's message %q:\n%s", denyMessage, stderr)
		}
	})

	t.Run("impersonation", func(t *testing.T) {
		out, stderr, err := env.Kubectl(ctx, "auth", "can-i", "create", "upstreams.gloo.solo.io",
			"-n", "default", "--as", "alice", "--as-group", "devs")
		if err == nil {
			t.Fatalf("alice may create upstreams without any RBAC (stdout %q)", out)
		}
		if strings.TrimSpace(out) != "no" {
			t.Fatalf("kubectl auth can-i --as alice: stdout %q, want \"no\"\nstderr: %s", out, stderr)
		}
		out, stderr, err = env.Kubectl(ctx, "auth", "can-i", "create", "upstreams.gloo.solo.io", "-n", "default")
		if err != nil || strings.TrimSpace(out) != "yes" {
			t.Fatalf("admin can-i create upstreams: stdout %q, err %v\nstderr: %s", out, err, stderr)
		}
	})
}
