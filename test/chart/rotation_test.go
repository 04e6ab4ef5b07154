package chart_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ec2guard/ec2guard/internal/selftest"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

const rotationWatch = 3 * time.Minute

// selfManagedValues: short-lived serving certificates (40s, renewed 30s before expiry, checked
// every 2s), so that the test sees several rotations.
func selfManagedValues() map[string]any {
	return map[string]any{
		"tls":        map[string]any{"selfManaged": map[string]any{"enabled": true, "serverValidity": "40s", "lookahead": "30s", "checkInterval": "2s"}},
		"discoverer": map[string]any{"enabled": false},
	}
}

// kubelet copies the certificate Secret into dir whenever it changes, as the kubelet updates a
// mounted Secret (each file replaced atomically), until ctx ends.
func kubelet(ctx context.Context, t *testing.T, env *k8senv.Env, secret, dir string, wg *sync.WaitGroup) {
	defer wg.Done()
	var version string
	for ctx.Err() == nil {
		s := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: secret}, s); err == nil && s.ResourceVersion != version &&
			len(s.Data["tls.crt"]) > 0 && len(s.Data["tls.key"]) > 0 {
			for _, k := range []string{"tls.key", "tls.crt"} {
				tmp := filepath.Join(dir, "."+k+".tmp")
				if err := os.WriteFile(tmp, s.Data[k], 0o600); err != nil {
					t.Errorf("kubelet: %v", err)
					return
				}
				if err := os.Rename(tmp, filepath.Join(dir, k)); err != nil {
					t.Errorf("kubelet: %v", err)
					return
				}
			}
			version = s.ResourceVersion
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// pointAtLoopback makes both installed webhook configurations call https://localhost:port (the
// test's webhook process) instead of the Service, leaving the caBundle to the rotator.
func pointAtLoopback(t *testing.T, env *k8senv.Env, port int) {
	t.Helper()
	ctx := context.Background()
	url := func(path string) *string { u := "https://localhost:" + strconv.Itoa(port) + path; return &u }
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: releaseName}, v); err != nil {
		t.Fatal(err)
	}
	v.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: url("/validate-upstream")}
	if err := env.Client.Update(ctx, v); err != nil {
		t.Fatal(err)
	}
	mu := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: releaseName}, mu); err != nil {
		t.Fatal(err)
	}
	mu.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: url("/mutate-upstream")}
	// Fail, so that a TLS failure of the mutating call would show too.
	fail := admissionregistrationv1.Fail
	mu.Webhooks[0].FailurePolicy = &fail
	if err := env.Client.Update(ctx, mu); err != nil {
		t.Fatal(err)
	}
}

// caBundles returns the caBundle of the validating and the mutating webhook.
func caBundles(t *testing.T, env *k8senv.Env) (string, string) {
	t.Helper()
	ctx := context.Background()
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	mu := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: releaseName}, v); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: releaseName}, mu); err != nil {
		t.Fatal(err)
	}
	return string(v.Webhooks[0].ClientConfig.CABundle), string(mu.Webhooks[0].ClientConfig.CABundle)
}

// servedCertificate returns the fingerprint of the certificate the webhook serves, verified
// against caPEM for the name the API server uses.
func servedCertificate(addr, caPEM string) (string, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(caPEM)) {
		return "", fmt.Errorf("caBundle is not PEM")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	return hex.EncodeToString(sum[:8]), nil
}

// TestSelfManagedRotation: the chart's self-managed TLS mode with the real webhook binary run as
// the chart's ServiceAccount (so with the chart's RBAC) behind the real API server. Two replicas
// elect one leader, which provisions the CA and a 40-second serving certificate, injects the CA
// into both webhook configurations, and renews the certificate again and again; a client sends
// dry-run creates of an EC2 Upstream all along, and every one gets the webhook's verdict (no failed
// admission call), while the served certificate changes under the same CA.
func TestSelfManagedRotation(t *testing.T) {
	h := newHelm(t)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	// The client logs the webhook's admission warnings through controller-runtime's logger.
	ctrllog.SetLogger(logr.Discard())
	env := k8senv.Start(t, k8senv.Options{})
	ctx := context.Background()
	for _, ns := range []string{releaseNamespace, "team-a"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if out, _, err := h.run("install", releaseName, h.chart, "-f", valuesFile(t, selfManagedValues()),
		"--kubeconfig", env.KubeconfigPath, "--namespace", releaseNamespace); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	deleteWebhookService(t, env)
	if v, m := caBundles(t, env); v != "" || m != "" {
		t.Fatal("the chart rendered a caBundle in the self-managed mode")
	}

	bin := binproc.Build(t, "webhook")
	args := installedArgs(t, env, "ec2guard-webhook", "webhook")
	kubeconfig := serviceAccountKubeconfig(t, env, "ec2guard-webhook")
	certDir := t.TempDir()
	kctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go kubelet(kctx, t, env, "ec2guard-webhook-tls", certDir, &wg)
	defer func() { stop(); wg.Wait() }()

	start := func() (process, string) {
		listen, probes := freeAddr(t), freeAddr(t)
		host, port, _ := net.SplitHostPort(listen)
		p := startProcess(t, bin, append(cloneArgs(args),
			"--kubeconfig="+kubeconfig, "--webhook-host="+host, "--webhook-port="+port, "--cert-dir="+certDir,
			"--health-probe-bind-address="+probes, "--metrics-bind-address=0",
			"--aws-endpoint=http://"+freeAddr(t), "--graceful-shutdown-timeout=5s",
			// The API server calls https://localhost here, not the Service.
			"--cert-rotation-dns-name=localhost"))
		p.waitReady(t, "http://"+probes+"/readyz")
		return p, listen
	}
	first, listen := start()
	_, portText, _ := net.SplitHostPort(listen)
	port, _ := strconv.Atoi(portText)
	pointAtLoopback(t, env, port)
	second, secondAddr := start()

	var ca string
	first.waitFor(t, "the caBundles to be injected", func() error {
		v, m := caBundles(t, env)
		if v == "" || v != m {
			return fmt.Errorf("caBundles not injected (validating %d bytes, mutating %d bytes)", len(v), len(m))
		}
		ca = v
		return nil
	})

	// The chart's helm test check (internal/selftest): ec2guard's verdict on a dry-run EC2 Upstream.
	verdict := func() error { return selftest.Run(ctx, env.Client, "team-a") }
	// The API server loads the changed configurations asynchronously: wait for the first verdict.
	first.waitFor(t, "the first verdict", verdict)

	served := map[string]bool{}
	var order []string
	calls, failures := 0, 0
	deadline := time.Now().Add(rotationWatch)
	for len(served) < 3 && time.Now().Before(deadline) {
		calls++
		if err := verdict(); err != nil {
			failures++
			t.Errorf("admission call %d during rotation: %v", calls, err)
		}
		for _, addr := range []string{listen, secondAddr} {
			fp, err := servedCertificate(addr, ca)
			if err != nil {
				t.Errorf("TLS to the webhook at %s, trusting the injected CA: %v", addr, err)
				continue
			}
			if !served[fp] {
				served[fp] = true
				order = append(order, fp)
			}
		}
		if v, m := caBundles(t, env); v != ca || m != ca {
			t.Error("the CA changed during server certificate rotation")
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("%d admission calls, %d failed; served certificates in order: %v", calls, failures, order)
	if len(served) < 3 {
		t.Errorf("saw %d serving certificates within %s, want the first and at least two renewals", len(served), rotationWatch)
	}

	lease := &coordinationv1.Lease{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "ec2guard-webhook-cert-rotation"}, lease); err != nil {
		t.Fatalf("the rotator's Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Error("no replica holds the certificate rotation Lease")
	}
	second.stop(t)
	first.stop(t)
}

func cloneArgs(s []string) []string { return append([]string(nil), s...) }

// checkSelfManaged: the self-managed TLS mode renders an empty Secret the webhook mounts, no
// caBundle, the rotation flags naming the chart's objects, and RBAC limited to them.
func checkSelfManaged(t *testing.T, m *manifest) {
	t.Helper()
	for _, hv := range hookViews(t, m) {
		if len(hv.cc.CABundle) != 0 {
			t.Errorf("%s webhook has a caBundle; the rotator owns it", hv.kind)
		}
	}
	d, c := webhookDeployment(t, m)
	flags := flagMap(c.Args)
	var secret *corev1.Secret
	for _, u := range m.ofKind("Secret") {
		secret = convert[corev1.Secret](t, u)
	}
	if secret == nil || len(secret.Data) != 0 || len(secret.StringData) != 0 {
		t.Fatalf("want one Secret without data, got %+v", secret)
	}
	if flags["cert-rotation-secret"] != releaseNamespace+"/"+secret.Name {
		t.Errorf("--cert-rotation-secret %q, want the rendered Secret %s", flags["cert-rotation-secret"], secret.Name)
	}
	mounted := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		mounted = mounted || (v.Secret != nil && v.Secret.SecretName == secret.Name)
	}
	if !mounted {
		t.Errorf("the webhook does not mount the rotator's Secret %s", secret.Name)
	}
	v, _ := webhookConfigurations(t, m)
	if flags["cert-rotation"] != "true" || flags["cert-rotation-webhook-configuration"] != v.Name {
		t.Errorf("rotation flags %v do not name the webhook configurations %s", flags, v.Name)
	}
	if dns := flags["cert-rotation-dns-name"]; !strings.HasSuffix(dns, ".svc") || !containsString(dnsNamesOf(t, m), dns) {
		t.Errorf("--cert-rotation-dns-name %q is not the Service's DNS name", dns)
	}
	if flags["leader-election-namespace"] != releaseNamespace || flags["leader-election-id"] == "" {
		t.Errorf("leader election flags %q %q", flags["leader-election-namespace"], flags["leader-election-id"])
	}
	sa := podServiceAccount(d)
	for _, verb := range []string{"list", "watch"} {
		if !m.allows(t, sa, verb, "admissionregistration.k8s.io", "validatingwebhookconfigurations", "") {
			t.Errorf("the webhook may not %s validatingwebhookconfigurations", verb)
		}
	}
	for _, verb := range []string{"update", "patch"} {
		if !m.allows(t, sa, verb, "coordination.k8s.io", "leases", releaseNamespace) && verb == "update" {
			t.Error("the webhook may not update its Lease")
		}
	}
	// Writes are limited by name.
	for _, u := range append(m.ofKind("ClusterRole"), m.ofKind("Role")...) {
		var rules []rbacv1.PolicyRule
		if u.GetKind() == "Role" {
			rules = convert[rbacv1.Role](t, u).Rules
		} else {
			rules = convert[rbacv1.ClusterRole](t, u).Rules
		}
		for _, r := range rules {
			writes := containsString(r.Verbs, "update") || containsString(r.Verbs, "patch")
			if !writes {
				continue
			}
			for _, res := range r.Resources {
				switch res {
				case "validatingwebhookconfigurations", "mutatingwebhookconfigurations":
					if len(r.ResourceNames) != 1 || r.ResourceNames[0] != v.Name {
						t.Errorf("%s %s: %v on %s not limited to %s: %v", u.GetKind(), u.GetName(), r.Verbs, res, v.Name, r.ResourceNames)
					}
				case "secrets":
					if len(r.ResourceNames) != 1 || r.ResourceNames[0] != secret.Name {
						t.Errorf("%s %s: %v on secrets not limited to %s: %v", u.GetKind(), u.GetName(), r.Verbs, secret.Name, r.ResourceNames)
					}
				}
			}
		}
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
