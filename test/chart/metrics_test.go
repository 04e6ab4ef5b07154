package chart_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ec2guard/ec2guard/pkg/certrotation"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// saToken creates ServiceAccount ns/name and returns a token for it.
func saToken(t *testing.T, env *k8senv.Env, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// TestSecureMetrics: with metrics.secure the real webhook and discoverer, each run as its chart
// ServiceAccount with the chart's RBAC, serve /metrics over HTTPS only to callers the API server authenticates and
// authorizes: no token 401, a ServiceAccount without the reader role 403, one bound to
// <release>-metrics-reader 200 — with ec2guard's metrics in the body.
func TestSecureMetrics(t *testing.T) {
	h := newHelm(t)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	env := k8senv.Start(t, k8senv.Options{})
	ctx := context.Background()
	for _, ns := range []string{releaseNamespace, "monitoring"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	values := map[string]any{"metrics": map[string]any{"secure": true}}
	if out, _, err := h.run("install", releaseName, h.chart, "-f", valuesFile(t, values), "--kubeconfig", env.KubeconfigPath, "--namespace", releaseNamespace); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	deleteWebhookService(t, env)
	secret := servingSecret(t, env)

	prometheus := saToken(t, env, "monitoring", "prometheus")
	intruder := saToken(t, env, "monitoring", "intruder")
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-reads-ec2guard"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "ec2guard-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "monitoring", Name: "prometheus"}},
	}
	if err := env.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}

	certDir := writeCertDir(t, secret)
	listen, probes, metrics := freeAddr(t), freeAddr(t), freeAddr(t)
	host, port, _ := net.SplitHostPort(listen)
	args := installedArgs(t, env, "ec2guard-webhook", "webhook")
	p := startProcess(t, binproc.Build(t, "webhook"), append(cloneArgs(args),
		"--kubeconfig="+serviceAccountKubeconfig(t, env, "ec2guard-webhook"),
		"--webhook-host="+host, "--webhook-port="+port, "--cert-dir="+certDir,
		"--health-probe-bind-address="+probes, "--metrics-bind-address="+metrics,
		"--aws-endpoint=http://"+freeAddr(t), "--graceful-shutdown-timeout=5s"))
	p.waitReady(t, "http://"+probes+"/readyz")
	dprobes, dmetrics := freeAddr(t), freeAddr(t)
	d := startProcess(t, binproc.Build(t, "discoverer"), append(cloneArgs(installedArgs(t, env, "ec2guard-discoverer", "discoverer")),
		"--kubeconfig="+serviceAccountKubeconfig(t, env, "ec2guard-discoverer"),
		"--health-probe-bind-address="+dprobes, "--metrics-bind-address="+dmetrics, "--aws-endpoint=http://"+freeAddr(t)))
	d.waitReady(t, "http://"+dprobes+"/readyz")

	// controller-runtime serves the secure endpoint with a self-signed certificate.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} //nolint:gosec // self-signed metrics certificate; the test is about authn/authz
	// Readiness does not cover the metrics server: with secure metrics controller-runtime starts it
	// after building its authentication and authorization clients, so wait until it listens.
	for binary, addr := range map[string]string{"webhook": metrics, "discoverer": dmetrics} {
		poll.UntilNil(t, readyTimeout, binary+"'s metrics server to listen on "+addr, func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err
		})
	}
	scrape := func(addr, token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("scrape %s: %v", addr, err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp.StatusCode, string(body)
	}
	for binary, target := range map[string]struct{ addr, metric string }{
		"webhook":    {metrics, certrotation.MetricCertificateExpiry},
		"discoverer": {dmetrics, "ec2guard_discoverer_groups"},
	} {
		if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + target.addr + "/metrics"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("%s: /metrics answered over plain HTTP with --metrics-secure", binary)
			}
		}
		for _, tc := range []struct {
			who, token string
			want       int
		}{{"no token", "", http.StatusUnauthorized}, {"a ServiceAccount without the reader role", intruder, http.StatusForbidden}, {"Prometheus", prometheus, http.StatusOK}} {
			code, body := scrape(target.addr, tc.token)
			if code != tc.want {
				t.Errorf("%s, %s: HTTP %d, want %d: %.200s", binary, tc.who, code, tc.want, body)
			}
			if code == http.StatusOK && !strings.Contains(body, target.metric) {
				t.Errorf("%s: the metrics lack %s", binary, target.metric)
			}
		}
	}
	d.stop(t)
	p.stop(t)
}
