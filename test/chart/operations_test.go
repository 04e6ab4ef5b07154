package chart_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ec2guard/ec2guard/internal/opsdoc"
)

// checkOperations: the operator-facing objects of the "operations" value set.
func checkOperations(t *testing.T, m *manifest) {
	t.Helper()
	checkNetworkPolicies(t, m)
	checkHPA(t, m)
	checkSecureMetrics(t, m)
	checkAlertMetricsExist(t, m)
	for _, c := range []string{"webhook", "discoverer"} {
		d := convert[appsv1.Deployment](t, mustComponent(t, m, "Deployment", c))
		if d.Spec.Template.Spec.PriorityClassName != "system-cluster-critical" {
			t.Errorf("%s pods: priorityClassName %q, want the configured one", c, d.Spec.Template.Spec.PriorityClassName)
		}
		if len(d.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
			t.Errorf("%s pods have no topology spread constraints", c)
		}
	}
}

// policyFor returns the NetworkPolicy selecting the pods of Deployment d.
func policyFor(t *testing.T, m *manifest, d *appsv1.Deployment) *networkingv1.NetworkPolicy {
	t.Helper()
	var found *networkingv1.NetworkPolicy
	for _, u := range m.ofKind("NetworkPolicy") {
		np := convert[networkingv1.NetworkPolicy](t, u)
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			if found != nil {
				t.Fatalf("two NetworkPolicies select the %s pods", d.Name)
			}
			found = np
		}
	}
	if found == nil {
		t.Fatalf("no NetworkPolicy selects the %s pods", d.Name)
	}
	return found
}

// ingressPorts maps each port of the policy's ingress rules to the sources allowed (nil: anywhere).
func ingressPorts(np *networkingv1.NetworkPolicy) map[int32][]networkingv1.NetworkPolicyPeer {
	out := map[int32][]networkingv1.NetworkPolicyPeer{}
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			out[p.Port.IntVal] = append(out[p.Port.IntVal], r.From...)
		}
	}
	return out
}

// checkNetworkPolicies: the webhook port only from the API server CIDR, the metrics port only from
// the monitoring namespace, nothing else but probes; egress limited to DNS, the API server and
// AWS on 443.
func checkNetworkPolicies(t *testing.T, m *manifest) {
	t.Helper()
	for _, c := range []string{"webhook", "discoverer"} {
		d := convert[appsv1.Deployment](t, mustComponent(t, m, "Deployment", c))
		np := policyFor(t, m, d)
		if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
			t.Errorf("%s NetworkPolicy policyTypes %v", c, np.Spec.PolicyTypes)
		}
		ctr := &d.Spec.Template.Spec.Containers[0]
		in := ingressPorts(np)
		var want []int32
		for _, p := range ctr.Ports {
			want = append(want, p.ContainerPort)
		}
		var got []int32
		for p := range in {
			got = append(got, p)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s NetworkPolicy opens ports %v, the container has %v", c, got, want)
		}
		for _, p := range ctr.Ports {
			peers := in[p.ContainerPort]
			switch p.Name {
			case "webhook":
				if len(peers) != 1 || peers[0].IPBlock == nil || peers[0].IPBlock.CIDR != "10.0.0.0/16" {
					t.Errorf("webhook port open to %+v, want only the API server CIDR", peers)
				}
			case "metrics", "dsc-metrics":
				if len(peers) != 1 || peers[0].NamespaceSelector == nil || peers[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
					t.Errorf("%s metrics port open to %+v, want only the monitoring namespace", c, peers)
				}
			}
		}
		var egress []string
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				var to []string
				for _, peer := range r.To {
					if peer.IPBlock != nil {
						to = append(to, peer.IPBlock.CIDR)
					}
				}
				egress = append(egress, p.Port.String()+"->"+strings.Join(to, ","))
			}
		}
		slices.Sort(egress)
		if wantEgress := []string{"443->10.0.0.0/16", "443->172.31.0.0/16", "53->", "53->", "6443->10.0.0.0/16"}; !slices.Equal(egress, wantEgress) {
			t.Errorf("%s egress %v, want %v", c, egress, wantEgress)
		}
	}
}

// checkHPA: the autoscaler scales the webhook Deployment, which then leaves replicas to it.
func checkHPA(t *testing.T, m *manifest) {
	t.Helper()
	hpas := m.ofKind("HorizontalPodAutoscaler")
	if len(hpas) != 1 {
		t.Fatalf("%d HorizontalPodAutoscalers, want 1", len(hpas))
	}
	hpa := convert[autoscalingv2.HorizontalPodAutoscaler](t, hpas[0])
	d, _ := webhookDeployment(t, m)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != d.Name || hpa.Namespace != d.Namespace {
		t.Errorf("HPA targets %+v, not the webhook Deployment %s", hpa.Spec.ScaleTargetRef, d.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 || hpa.Spec.MaxReplicas != 5 {
		t.Errorf("HPA replicas %v-%d, want 3-5", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if d.Spec.Replicas != nil {
		t.Errorf("the webhook Deployment sets replicas %d; with an HPA every upgrade would reset the scale", *d.Spec.Replicas)
	}
}

// checkSecureMetrics: both ServiceAccounts may review tokens and access, a reader role exists, and
// the ServiceMonitor scrapes over HTTPS with a token.
func checkSecureMetrics(t *testing.T, m *manifest) {
	t.Helper()
	for _, c := range []string{"webhook", "discoverer"} {
		d := convert[appsv1.Deployment](t, mustComponent(t, m, "Deployment", c))
		sa := podServiceAccount(d)
		if !m.allows(t, sa, "create", "authentication.k8s.io", "tokenreviews", "") || !m.allows(t, sa, "create", "authorization.k8s.io", "subjectaccessreviews", "") {
			t.Errorf("%s ServiceAccount cannot review the scrapers' tokens and access (--metrics-secure)", c)
		}
	}
	reader := m.named("ClusterRole", "ec2guard-metrics-reader")
	if reader == nil {
		t.Fatal("no ClusterRole ec2guard-metrics-reader")
	}
	rules := convert[rbacv1.ClusterRole](t, reader).Rules
	if len(rules) != 1 || !slices.Equal(rules[0].NonResourceURLs, []string{"/metrics"}) || !slices.Equal(rules[0].Verbs, []string{"get"}) {
		t.Errorf("metrics reader rules %+v, want get on /metrics only", rules)
	}
	sm := m.ofKind("ServiceMonitor")[0]
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	for _, e := range eps {
		ep := e.(map[string]any)
		if ep["scheme"] != "https" || ep["bearerTokenFile"] == nil {
			t.Errorf("ServiceMonitor endpoint %v does not scrape over HTTPS with a token", ep)
		}
	}
}

var metricToken = regexp.MustCompile(`\b(?:ec2guard|controller_runtime)_[a-z0-9_]+\b`)

// checkAlertMetricsExist: every metric an alert uses is one the code registers (ec2guard's own, from
// the registries the binaries build) or controller-runtime's (in its source).
func checkAlertMetricsExist(t *testing.T, m *manifest) {
	t.Helper()
	rules := m.ofKind("PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(rules))
	}
	if rules[0].GetLabels()["release"] != "prometheus" {
		t.Errorf("PrometheusRule labels %v lack release=prometheus", rules[0].GetLabels())
	}
	known := map[string]bool{}
	metrics, err := opsdoc.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range metrics {
		known[mt.Name] = true
	}
	crDir := moduleDir(t, "sigs.k8s.io/controller-runtime")
	groups, _, _ := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	var alerts []string
	for _, g := range groups {
		rs, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rs {
			rule := r.(map[string]any)
			alerts = append(alerts, rule["alert"].(string))
			if l, _, _ := unstructured.NestedStringMap(rule, "labels"); l["team"] != "platform" || l["severity"] == "" {
				t.Errorf("alert %s labels %v lack severity and the configured team", rule["alert"], l)
			}
			expr := rule["expr"].(string)
			names := metricToken.FindAllString(expr, -1)
			if len(names) == 0 {
				t.Errorf("alert %s uses no ec2guard or controller-runtime metric: %s", rule["alert"], expr)
			}
			for _, name := range names {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if strings.HasPrefix(base, "controller_runtime_") {
					if !sourceContains(t, crDir, `"`+base+`"`) {
						t.Errorf("alert %s: controller-runtime registers no metric %s", rule["alert"], base)
					}
					continue
				}
				if !known[base] {
					t.Errorf("alert %s: no metric %s is registered by the code", rule["alert"], base)
				}
			}
		}
	}
	for _, want := range []string{"EC2GuardWebhookErrors", "EC2GuardWebhookLatencyHigh", "EC2GuardIAMDecisionsUnknown",
		"EC2GuardWebhookCertificateExpiring", "EC2GuardDiscoveryGroupFailing", "EC2GuardReportWritesFailing"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing (have %v)", want, alerts)
		}
	}
}

// sourceContains reports whether a non-test Go file under dir contains s.
func sourceContains(t *testing.T, dir, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || found || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = strings.Contains(string(b), s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// checkHelmTest: the `helm test` hook runs `ec2guard selftest` from the pinned CLI image in a
// locked-down Pod whose ServiceAccount may only create Upstreams in the probe's namespace, which
// the webhooks do not exclude.
func checkHelmTest(t *testing.T, m *manifest) {
	t.Helper()
	pods := m.ofKind("Pod")
	if len(pods) != 1 {
		t.Fatalf("%d Pods rendered, want the helm test hook", len(pods))
	}
	if pods[0].GetAnnotations()["helm.sh/hook"] != "test" {
		t.Errorf("Pod %s is not a helm test hook: %v", pods[0].GetName(), pods[0].GetAnnotations())
	}
	pod := convert[corev1.Pod](t, pods[0])
	c := pod.Spec.Containers[0]
	if c.Image != "ghcr.io/ec2guard/ec2guard:0.1.0" || !slices.Equal(c.Args, []string{"selftest", "--namespace=default"}) {
		t.Errorf("test container %s %v, want the CLI image running selftest in default", c.Image, c.Args)
	}
	if pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %s, want Never", pod.Spec.RestartPolicy)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("test container security context %+v is not locked down", sc)
	}
	sa := serviceAccount{namespace: pod.Namespace, name: pod.Spec.ServiceAccountName}
	if !m.allows(t, sa, "create", "gloo.solo.io", "upstreams", "default") {
		t.Error("the test ServiceAccount may not create (dry-run) Upstreams in default")
	}
	for _, check := range []struct{ verb, group, resource, ns string }{
		{"create", "gloo.solo.io", "upstreams", "team-a"}, {"get", "", "secrets", "default"}, {"delete", "gloo.solo.io", "upstreams", "default"},
	} {
		if m.allows(t, sa, check.verb, check.group, check.resource, check.ns) {
			t.Errorf("the test ServiceAccount may %s %s/%s in %s", check.verb, check.group, check.resource, check.ns)
		}
	}
	checkExcludedNamespaces(t, m, []string{"kube-system", releaseNamespace})
}
