package chart_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// clusterScoped are the kinds the chart renders without a namespace.
var clusterScoped = []string{"ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "CustomResourceDefinition", "PriorityClass"}

func TestLintStrict(t *testing.T) {
	h := newHelm(t)
	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			out, _, err := h.run("lint", "--strict", h.chart, "--namespace", releaseNamespace, "-f", valuesFile(t, vs.values))
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("unexpected lint output:\n%s", out)
			}
		})
	}
}

func TestRenderValueSets(t *testing.T) {
	h := newHelm(t)
	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			m := h.render(t, vs.values)
			checkInvariants(t, m)
			checkFlags(t, m, vs)
			if vs.check != nil {
				vs.check(t, m)
			}
		})
	}
}

// TestRenderFailsClearly: combinations that cannot work fail `helm template` with a message naming
// the values, instead of rendering a webhook that times out or a pod that crash-loops.
func TestRenderFailsClearly(t *testing.T) {
	h := newHelm(t)
	// webhook sets webhook.admission and webhook.iam (nil: keep the defaults; a YAML null would
	// delete them).
	webhook := func(admission, iam map[string]any) map[string]any {
		w := map[string]any{}
		if admission != nil {
			w["admission"] = admission
		}
		if iam != nil {
			w["iam"] = iam
		}
		return map[string]any{"webhook": w}
	}
	cases := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"timeout equals deadline", webhook(map[string]any{"timeoutSeconds": 5}, map[string]any{"deadline": "5s"}),
			"webhook.admission.timeoutSeconds (5) must be greater than webhook.iam.deadline (5s)"},
		{"timeout below deadline", webhook(map[string]any{"timeoutSeconds": 2}, map[string]any{"deadline": "2500ms"}),
			"webhook.admission.timeoutSeconds (2) must be greater than webhook.iam.deadline (2500ms)"},
		{"deadline in minutes", webhook(map[string]any{"timeoutSeconds": 30}, map[string]any{"deadline": "1m"}),
			"must be greater than webhook.iam.deadline (1m)"},
		{"deadline not a duration", webhook(nil, map[string]any{"deadline": "2 seconds"}),
			"/webhook/iam/deadline"},
		{"deadline without unit", webhook(nil, map[string]any{"deadline": 2}),
			"/webhook/iam/deadline"},
		{"timeout above the API limit", webhook(map[string]any{"timeoutSeconds": 31}, nil),
			"/webhook/admission/timeoutSeconds"},
		{"typo in an enforcement key", map[string]any{"webhook": map[string]any{"enforcement": map[string]any{"iamDenny": "warn"}}},
			"additional properties 'iamDenny' not allowed"},
		{"unknown action", map[string]any{"webhook": map[string]any{"enforcement": map[string]any{"spec": "block"}}},
			"/webhook/enforcement/spec"},
		{"unknown IAM source", webhook(nil, map[string]any{"sources": []any{"local", "oracle"}}),
			"/webhook/iam/sources"},
		{"auditor reader without auditor", webhook(nil, map[string]any{"reader": "auditor"}),
			"webhook.iam.reader=auditor needs webhook.iam.auditor=true"},
		{"snapshot without auditor", webhook(nil, map[string]any{"collection": "account-snapshot"}),
			"webhook.iam.collection=account-snapshot needs webhook.iam.auditor=true"},
		{"user TLS without CA", map[string]any{"tls": map[string]any{"secretName": "mine"}},
			"tls.secretName=mine needs tls.caBundle"},
		{"CA as base64", map[string]any{"tls": map[string]any{"secretName": "mine", "caBundle": base64.StdEncoding.EncodeToString([]byte(testCAPEM(t)))}},
			"tls.caBundle must be PEM text"},
		{"two TLS modes", map[string]any{"tls": map[string]any{"secretName": "mine", "caBundle": testCAPEM(t)}, "certManager": map[string]any{"enabled": true}},
			"certManager.enabled and tls.secretName are two different TLS modes"},
		{"discover from tags without regions", map[string]any{"discoverer": map[string]any{"discoverFromTags": map[string]any{"enabled": true, "secret": "gloo-system/aws"}}},
			"discoverer.discoverFromTags.regions"},
		{"discover from tags with a bare secret name", map[string]any{"discoverer": map[string]any{"discoverFromTags": map[string]any{"enabled": true, "secret": "aws", "regions": []any{"us-east-1"}}}},
			`discoverer.discoverFromTags.secret "aws" must be namespace/name`},
		{"backoff below interval", map[string]any{"discoverer": map[string]any{"interval": "10m", "maxBackoff": "1m"}},
			"discoverer.maxBackoff (1m) must be 0s (automatic) or at least discoverer.interval (10m)"},
		{"replicas without leader election", map[string]any{"discoverer": map[string]any{"leaderElection": map[string]any{"enabled": false}}},
			"discoverer.replicas=2 needs discoverer.leaderElection.enabled"},
		{"sidecar port collision", map[string]any{"discoverer": map[string]any{"mode": "sidecar", "metricsPort": 8080}},
			"discoverer.metricsPort 8080 collides with a webhook port"},
		{"self-managed with cert-manager", map[string]any{"tls": map[string]any{"selfManaged": map[string]any{"enabled": true}}, "certManager": map[string]any{"enabled": true}},
			"tls.selfManaged.enabled is a TLS mode of its own"},
		{"self-managed lookahead too long", map[string]any{"tls": map[string]any{"selfManaged": map[string]any{"enabled": true, "serverValidity": "24h", "lookahead": "48h"}}},
			"tls.selfManaged.lookahead (48h) must be shorter than tls.selfManaged.serverValidity (24h)"},
		{"latest is not a digest", map[string]any{"webhook": map[string]any{"image": map[string]any{"digest": "latest"}}},
			"/webhook/image/digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.template(t, tc.values)
			if err == nil {
				t.Fatalf("helm template succeeded, want an error containing %q; rendered:\n%.2000s", tc.want, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not contain %q:\n%v", tc.want, err)
			}
		})
	}
}

// TestTimeoutJustAboveDeadlineRenders: the check is "greater than", not a rounding of it.
func TestTimeoutJustAboveDeadlineRenders(t *testing.T) {
	h := newHelm(t)
	for _, deadline := range []string{"2999ms", "2.5s", "1m0.5s"} {
		timeout := 3
		if deadline == "1m0.5s" {
			timeout = 30 // 60.5s cannot fit: must fail
		}
		values := map[string]any{"webhook": map[string]any{"admission": map[string]any{"timeoutSeconds": timeout}, "iam": map[string]any{"deadline": deadline}}}
		_, err := h.template(t, values)
		d, perr := time.ParseDuration(deadline)
		if perr != nil {
			t.Fatal(perr)
		}
		if wantOK := time.Duration(timeout)*time.Second > d; wantOK != (err == nil) {
			t.Errorf("timeoutSeconds %d, deadline %s: render error %v, want success=%t", timeout, deadline, err, wantOK)
		}
	}
}

// ---- invariants of every value set ----

func checkInvariants(t *testing.T, m *manifest) {
	t.Helper()
	checkNamespaces(t, m)
	checkPods(t, m)
	checkWebhookWiring(t, m)
	checkWebhookConfigurations(t, m)
	checkWebhookRBAC(t, m)
	checkDiscoverer(t, m)
	checkPDBs(t, m)
	if strings.Contains(m.raw, "aws_secret_access_key") || strings.Contains(m.raw, "aws_session_token") {
		t.Error("the rendered manifest mentions AWS secret keys")
	}
}

func checkNamespaces(t *testing.T, m *manifest) {
	t.Helper()
	for _, o := range m.objects {
		cluster := slices.Contains(clusterScoped, o.GetKind())
		switch {
		case cluster && o.GetNamespace() != "":
			t.Errorf("%s %s is cluster-scoped but has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		case !cluster && o.GetNamespace() == "":
			t.Errorf("%s %s has no namespace", o.GetKind(), o.GetName())
		case !cluster && o.GetNamespace() != releaseNamespace && o.GetKind() != "Role" && o.GetKind() != "RoleBinding":
			t.Errorf("%s %s is in namespace %q, not the release namespace", o.GetKind(), o.GetName(), o.GetNamespace())
		}
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			if o.GetLabels()[l] == "" {
				t.Errorf("%s %s has no label %s", o.GetKind(), o.GetName(), l)
			}
		}
	}
}

// checkPods: images pinned, non-root, read-only root filesystem, no capabilities, RuntimeDefault
// seccomp and resource requests for every container of every Deployment.
func checkPods(t *testing.T, m *manifest) {
	t.Helper()
	for _, u := range m.ofKind("Deployment") {
		d := convert[appsv1.Deployment](t, u)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels (%v)", d.Name, d.Spec.Selector, err)
		}
		psc := d.Spec.Template.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("Deployment %s: pod security context %+v is not non-root with RuntimeDefault seccomp", d.Name, psc)
		}
		if d.Spec.Template.Spec.ServiceAccountName == "" {
			t.Errorf("Deployment %s has no ServiceAccount", d.Name)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
			if strings.HasSuffix(c.Image, ":latest") || !(strings.Contains(c.Image, "@sha256:") || strings.Contains(c.Image[strings.LastIndex(c.Image, "/")+1:], ":")) {
				t.Errorf("%s: image %q is not pinned to a tag other than latest or a digest", where, c.Image)
			}
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
				sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, corev1.Capability("ALL")) || len(sc.Capabilities.Add) > 0 ||
				sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: security context %+v is not locked down", where, sc)
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: no CPU and memory requests", where)
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: needs liveness and readiness probes", where)
			}
			for _, e := range c.Env {
				if e.Value != "" && strings.Contains(strings.ToUpper(e.Name), "SECRET") {
					t.Errorf("%s: env %s holds a literal secret value", where, e.Name)
				}
			}
		}
	}
}

// webhookDeployment returns the webhook Deployment and its webhook container.
func webhookDeployment(t *testing.T, m *manifest) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	u := m.component(t, "Deployment", "webhook")
	if u == nil {
		t.Fatal("no webhook Deployment")
	}
	d := convert[appsv1.Deployment](t, u)
	c := container(d, "webhook")
	if c == nil {
		t.Fatalf("Deployment %s has no container named webhook", d.Name)
	}
	return d, c
}

func container(d *appsv1.Deployment, name string) *corev1.Container {
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == name {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	return nil
}

// flagMap reads "--name=value" arguments as the Go flag package does: a later one wins.
func flagMap(args []string) map[string]string {
	flags := map[string]string{}
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok {
			value = "true"
		}
		flags[name] = value
	}
	return flags
}

// addrPort is the port of a ":PORT" or "HOST:PORT" bind address.
func addrPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bind address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("bind address %q: %v", addr, err)
	}
	return int32(n)
}

func containerPort(t *testing.T, c *corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

// checkProbes: readiness and liveness go to the named port, which is where the binary serves them.
func checkProbes(t *testing.T, c *corev1.Container, portName, readyPath string) {
	t.Helper()
	for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		want := "/healthz"
		if kind == "readiness" {
			want = readyPath
		}
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port.String() != portName {
			t.Errorf("container %s: %s probe %+v, want GET %s on port %s", c.Name, kind, p, want, portName)
		}
	}
}

// checkWebhookWiring: ports, probes, Service and the serving certificate mount agree with the flags.
func checkWebhookWiring(t *testing.T, m *manifest) {
	t.Helper()
	d, c := webhookDeployment(t, m)
	flags := flagMap(c.Args)
	if got, want := strconv.Itoa(int(containerPort(t, c, "webhook"))), flags["webhook-port"]; got != want {
		t.Errorf("webhook container port %s, --webhook-port %s", got, want)
	}
	if got, want := containerPort(t, c, "probes"), addrPort(t, flags["health-probe-bind-address"]); got != want {
		t.Errorf("probes container port %d, --health-probe-bind-address port %d", got, want)
	}
	if got, want := containerPort(t, c, "metrics"), addrPort(t, flags["metrics-bind-address"]); got != want {
		t.Errorf("metrics container port %d, --metrics-bind-address port %d", got, want)
	}
	checkProbes(t, c, "probes", "/readyz")

	var certVolume string
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == flags["cert-dir"] {
			certVolume = vm.Name
			if vm.SubPath != "" || !vm.ReadOnly {
				t.Errorf("cert mount %+v: must be read-only and without subPath (certwatcher needs updates)", vm)
			}
		}
	}
	var certSecret string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == certVolume && v.Secret != nil {
			certSecret = v.Secret.SecretName
		}
	}
	if certSecret == "" {
		t.Errorf("no Secret volume is mounted at --cert-dir %s", flags["cert-dir"])
	}

	svc := convert[corev1.Service](t, mustComponent(t, m, "Service", "webhook"))
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Service %s selector %v does not select the webhook pods", svc.Name, svc.Spec.Selector)
	}
	var https *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == "https" {
			https = &svc.Spec.Ports[i]
		}
	}
	if https == nil || https.TargetPort.String() != "webhook" {
		t.Errorf("Service %s has no https port targeting the webhook port: %+v", svc.Name, svc.Spec.Ports)
	}
}

func mustComponent(t *testing.T, m *manifest, kind, c string) *unstructured.Unstructured {
	t.Helper()
	u := m.component(t, kind, c)
	if u == nil {
		t.Fatalf("no %s of component %s", kind, c)
	}
	return u
}

// webhookConfigurations returns the one validating and the one mutating webhook.
func webhookConfigurations(t *testing.T, m *manifest) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
	t.Helper()
	vs, ms := m.ofKind("ValidatingWebhookConfiguration"), m.ofKind("MutatingWebhookConfiguration")
	if len(vs) != 1 || len(ms) != 1 {
		t.Fatalf("%d validating and %d mutating webhook configurations, want one each", len(vs), len(ms))
	}
	v := convert[admissionregistrationv1.ValidatingWebhookConfiguration](t, vs[0])
	mu := convert[admissionregistrationv1.MutatingWebhookConfiguration](t, ms[0])
	if len(v.Webhooks) != 1 || len(mu.Webhooks) != 1 {
		t.Fatalf("%d validating and %d mutating webhooks, want one each", len(v.Webhooks), len(mu.Webhooks))
	}
	return v, mu
}

// hookView is what validating and mutating webhooks have in common.
type hookView struct {
	kind, name, path string
	cc               admissionregistrationv1.WebhookClientConfig
	rules            []admissionregistrationv1.RuleWithOperations
	sideEffects      *admissionregistrationv1.SideEffectClass
	versions         []string
	matchPolicy      *admissionregistrationv1.MatchPolicyType
	failurePolicy    *admissionregistrationv1.FailurePolicyType
	timeout          *int32
}

func hookViews(t *testing.T, m *manifest) []hookView {
	t.Helper()
	v, mu := webhookConfigurations(t, m)
	vw, mw := v.Webhooks[0], mu.Webhooks[0]
	return []hookView{
		{"validating", vw.Name, "/validate-upstream", vw.ClientConfig, vw.Rules, vw.SideEffects, vw.AdmissionReviewVersions, vw.MatchPolicy, vw.FailurePolicy, vw.TimeoutSeconds},
		{"mutating", mw.Name, "/mutate-upstream", mw.ClientConfig, mw.Rules, mw.SideEffects, mw.AdmissionReviewVersions, mw.MatchPolicy, mw.FailurePolicy, mw.TimeoutSeconds},
	}
}

// checkWebhookConfigurations: both webhooks match CREATE/UPDATE of gloo.solo.io/v1 upstreams, have
// no side effects, call the chart's Service, and time out after the webhook's IAM deadline.
func checkWebhookConfigurations(t *testing.T, m *manifest) {
	t.Helper()
	_, c := webhookDeployment(t, m)
	deadline, err := time.ParseDuration(flagMap(c.Args)["iam-deadline"])
	if err != nil {
		t.Fatalf("--iam-deadline: %v", err)
	}
	svc := convert[corev1.Service](t, mustComponent(t, m, "Service", "webhook"))
	wantRules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{"gloo.solo.io"}, APIVersions: []string{"v1"}, Resources: []string{"upstreams"},
			Scope: ptrTo(admissionregistrationv1.NamespacedScope),
		},
	}}
	for _, h := range hookViews(t, m) {
		if h.sideEffects == nil || *h.sideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("%s webhook: sideEffects %v, want None", h.kind, h.sideEffects)
		}
		if !slices.Equal(h.versions, []string{"v1"}) {
			t.Errorf("%s webhook: admissionReviewVersions %v, want [v1]", h.kind, h.versions)
		}
		if h.matchPolicy == nil || *h.matchPolicy != admissionregistrationv1.Equivalent {
			t.Errorf("%s webhook: matchPolicy %v, want Equivalent", h.kind, h.matchPolicy)
		}
		if h.timeout == nil || time.Duration(*h.timeout)*time.Second <= deadline {
			t.Errorf("%s webhook: timeoutSeconds %v is not above --iam-deadline %s", h.kind, h.timeout, deadline)
		}
		if h.failurePolicy == nil {
			t.Errorf("%s webhook: no failurePolicy", h.kind)
		}
		if !equality.Semantic.DeepEqual(h.rules, wantRules) {
			t.Errorf("%s webhook: rules %+v, want %+v", h.kind, h.rules, wantRules)
		}
		s := h.cc.Service
		if s == nil || s.Name != svc.Name || s.Namespace != svc.Namespace || s.Path == nil || *s.Path != h.path ||
			s.Port == nil || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == *s.Port && p.Name == "https" }) {
			t.Errorf("%s webhook: clientConfig %+v does not call Service %s/%s on its https port at %s", h.kind, s, svc.Namespace, svc.Name, h.path)
		}
		if h.cc.URL != nil {
			t.Errorf("%s webhook: clientConfig has a URL", h.kind)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }

// ---- RBAC, evaluated over the rendered objects (envtest checks the same with the real authorizer) ----

// serviceAccount is a subject of the rendered RBAC.
type serviceAccount struct{ namespace, name string }

func (sa serviceAccount) bound(subjects []rbacv1.Subject) bool {
	return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
		return s.Kind == rbacv1.ServiceAccountKind && s.Name == sa.name && s.Namespace == sa.namespace
	})
}

func rulesAllow(rules []rbacv1.PolicyRule, verb, group, resource string) bool {
	in := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	return slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
		return in(r.Verbs, verb) && in(r.APIGroups, group) && in(r.Resources, resource)
	})
}

// allows says whether the rendered RBAC lets sa do verb on group/resource in namespace ("" means
// cluster-wide: only ClusterRoleBindings count).
func (m *manifest) allows(t *testing.T, sa serviceAccount, verb, group, resource, namespace string) bool {
	t.Helper()
	clusterRole := func(name string) []rbacv1.PolicyRule {
		if u := m.named("ClusterRole", name); u != nil {
			return convert[rbacv1.ClusterRole](t, u).Rules
		}
		return nil
	}
	for _, u := range m.ofKind("ClusterRoleBinding") {
		b := convert[rbacv1.ClusterRoleBinding](t, u)
		if sa.bound(b.Subjects) && rulesAllow(clusterRole(b.RoleRef.Name), verb, group, resource) {
			return true
		}
	}
	if namespace == "" {
		return false
	}
	for _, u := range m.ofKind("RoleBinding") {
		b := convert[rbacv1.RoleBinding](t, u)
		if b.Namespace != namespace || !sa.bound(b.Subjects) {
			continue
		}
		var rules []rbacv1.PolicyRule
		if b.RoleRef.Kind == "ClusterRole" {
			rules = clusterRole(b.RoleRef.Name)
		} else {
			for _, ru := range m.ofKind("Role") {
				if ru.GetName() == b.RoleRef.Name && ru.GetNamespace() == namespace {
					rules = convert[rbacv1.Role](t, ru).Rules
				}
			}
		}
		if rulesAllow(rules, verb, group, resource) {
			return true
		}
	}
	return false
}

// podServiceAccount is the ServiceAccount of a Deployment's pods.
func podServiceAccount(d *appsv1.Deployment) serviceAccount {
	return serviceAccount{namespace: d.Namespace, name: d.Spec.Template.Spec.ServiceAccountName}
}

// checkWebhookRBAC: Secrets readable exactly where --secret-namespaces says, never writable;
// SubjectAccessReviews creatable.
func checkWebhookRBAC(t *testing.T, m *manifest) {
	t.Helper()
	d, c := webhookDeployment(t, m)
	sa := podServiceAccount(d)
	if !m.allows(t, sa, "create", "authorization.k8s.io", "subjectaccessreviews", "") {
		t.Errorf("webhook ServiceAccount %s may not create subjectaccessreviews", sa.name)
	}
	namespaces := strings.Split(flagMap(c.Args)["secret-namespaces"], ",")
	if namespaces[0] == "" {
		namespaces = nil
	}
	for _, verb := range []string{"get", "list", "watch"} {
		if got := m.allows(t, sa, verb, "", "secrets", ""); got != (len(namespaces) == 0) {
			t.Errorf("webhook may %s secrets cluster-wide: %t, want %t (--secret-namespaces %v)", verb, got, len(namespaces) == 0, namespaces)
		}
		for _, ns := range namespaces {
			if !m.allows(t, sa, verb, "", "secrets", ns) {
				t.Errorf("webhook may not %s secrets in %s, one of --secret-namespaces", verb, ns)
			}
		}
		if len(namespaces) > 0 && m.allows(t, sa, verb, "", "secrets", "not-listed") {
			t.Errorf("webhook may %s secrets outside --secret-namespaces", verb)
		}
	}
	discovererInPod := container(d, "discoverer") != nil
	for _, verb := range []string{"create", "update", "patch", "delete"} {
		if !discovererInPod && m.allows(t, sa, verb, "", "secrets", "gloo-system") {
			t.Errorf("webhook may %s secrets", verb)
		}
	}
}

// discovererDeployment returns the Deployment running the discoverer container (its own, or the
// webhook's in sidecar mode) and that container, or nils when the discoverer is off.
func discovererDeployment(t *testing.T, m *manifest) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	for _, u := range m.ofKind("Deployment") {
		d := convert[appsv1.Deployment](t, u)
		if c := container(d, "discoverer"); c != nil {
			return d, c
		}
	}
	return nil, nil
}

// checkDiscoverer: probes on the flag's port, leader election in the release namespace, and the
// RBAC it needs (and no more than the configuration needs).
func checkDiscoverer(t *testing.T, m *manifest) {
	t.Helper()
	d, c := discovererDeployment(t, m)
	if d == nil {
		return
	}
	flags := flagMap(c.Args)
	if got, want := containerPort(t, c, "dsc-probes"), addrPort(t, flags["health-probe-bind-address"]); got != want {
		t.Errorf("discoverer probe port %d, --health-probe-bind-address port %d", got, want)
	}
	if got, want := containerPort(t, c, "dsc-metrics"), addrPort(t, flags["metrics-bind-address"]); got != want {
		t.Errorf("discoverer metrics port %d, --metrics-bind-address port %d", got, want)
	}
	checkProbes(t, c, "dsc-probes", "/readyz")
	if flags["leader-election-namespace"] != releaseNamespace {
		t.Errorf("--leader-election-namespace %q, want the release namespace", flags["leader-election-namespace"])
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	// Several replicas need one of them elected, or the groups sharded among them.
	if replicas > 1 && flags["leader-elect"] != "true" && flags["sharding"] != "leases" {
		t.Errorf("%d discoverer replicas without --leader-elect or --sharding=leases", replicas)
	}

	sa := podServiceAccount(d)
	must := func(verb, group, resource, ns string, want bool) {
		t.Helper()
		if got := m.allows(t, sa, verb, group, resource, ns); got != want {
			t.Errorf("discoverer ServiceAccount %s: %s %s/%s in %q = %t, want %t", sa.name, verb, group, resource, ns, got, want)
		}
	}
	for _, verb := range []string{"get", "list", "watch", "patch"} {
		must(verb, "gloo.solo.io", "upstreams", "", true)
	}
	generate := flags["discover-from-tags"] == "true"
	must("create", "gloo.solo.io", "upstreams", "", generate)
	must("delete", "gloo.solo.io", "upstreams", "", generate)
	publish := flags["publish"] == "endpointslices"
	for _, verb := range []string{"get", "list", "watch"} {
		must(verb, "", "secrets", "", true)
		must(verb, "", "services", "", publish)
		must(verb, "discovery.k8s.io", "endpointslices", "", publish)
	}
	for _, verb := range []string{"create", "update", "delete"} {
		must(verb, "", "services", "", publish)
		must(verb, "discovery.k8s.io", "endpointslices", "", publish)
	}
	for _, verb := range []string{"get", "create", "update"} {
		must(verb, "coordination.k8s.io", "leases", releaseNamespace, true)
		must(verb, "coordination.k8s.io", "leases", "", false)
	}
	must("create", "", "events", releaseNamespace, true)
}

// checkPDBs: each PodDisruptionBudget selects the pods of a Deployment with more than one replica.
func checkPDBs(t *testing.T, m *manifest) {
	t.Helper()
	for _, u := range m.ofKind("PodDisruptionBudget") {
		pdb := convert[policyv1.PodDisruptionBudget](t, u)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var matched bool
		for _, du := range m.ofKind("Deployment") {
			d := convert[appsv1.Deployment](t, du)
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = true
				if replicas := leastReplicas(t, m, d); replicas < 2 {
					t.Errorf("PodDisruptionBudget %s covers Deployment %s with fewer than 2 replicas: it would block node drains", pdb.Name, d.Name)
				}
			}
		}
		if !matched {
			t.Errorf("PodDisruptionBudget %s selects no Deployment's pods", pdb.Name)
		}
	}
}

// checkFlags: the value set's flags are in the rendered command lines, its absent ones are not.
func checkFlags(t *testing.T, m *manifest, vs valueSet) {
	t.Helper()
	_, wc := webhookDeployment(t, m)
	var dargs []string
	if _, dc := discovererDeployment(t, m); dc != nil {
		dargs = dc.Args
	}
	for _, f := range vs.webhookFlags {
		if !slices.Contains(wc.Args, f) {
			t.Errorf("webhook args lack %s: %q", f, wc.Args)
		}
	}
	for _, f := range vs.discovererFlags {
		if !slices.Contains(dargs, f) {
			t.Errorf("discoverer args lack %s: %q", f, dargs)
		}
	}
	for _, f := range vs.absentFlags {
		for _, a := range append(slices.Clone(wc.Args), dargs...) {
			if a == f || strings.HasPrefix(a, f+"=") {
				t.Errorf("unexpected flag %s", a)
			}
		}
	}
}

// ---- checks of particular value sets ----

// checkDefaults: a self-signed certificate generated by the chart, trusted by both webhook
// configurations, valid for the Service's DNS names; one PodDisruptionBudget per component.
func checkDefaults(t *testing.T, m *manifest) {
	t.Helper()
	d, _ := webhookDeployment(t, m)
	if *d.Spec.Replicas != 2 {
		t.Errorf("webhook replicas %d, want 2", *d.Spec.Replicas)
	}
	dd, _ := discovererDeployment(t, m)
	if dd == nil || dd == d || *dd.Spec.Replicas != 2 {
		t.Errorf("want a discoverer Deployment of its own with 2 replicas")
	}
	if n := len(m.ofKind("PodDisruptionBudget")); n != 2 {
		t.Errorf("%d PodDisruptionBudgets, want 2", n)
	}
	for _, k := range []string{"Certificate", "Issuer", "ServiceMonitor"} {
		if len(m.ofKind(k)) > 0 {
			t.Errorf("unexpected %s", k)
		}
	}
	v, mu := webhookConfigurations(t, m)
	if fp := v.Webhooks[0].FailurePolicy; *fp != admissionregistrationv1.Fail {
		t.Errorf("validating failurePolicy %s, want Fail", *fp)
	}
	if fp := mu.Webhooks[0].FailurePolicy; *fp != admissionregistrationv1.Ignore {
		t.Errorf("mutating failurePolicy %s, want Ignore", *fp)
	}
	secret := tlsSecret(t, m)
	for _, h := range hookViews(t, m) {
		if string(h.cc.CABundle) != string(secret.Data["ca.crt"]) {
			t.Errorf("%s webhook caBundle differs from the generated Secret's ca.crt", h.kind)
		}
	}
	verifyServingCert(t, secret, dnsNamesOf(t, m))
	checkDiscovererExempt(t, m, "ec2guard-discoverer")
	checkEC2Only(t, m, true)
	checkHelmTest(t, m)
	if n := len(m.ofKind("CustomResourceDefinition")); n != 0 {
		t.Errorf("%d CRDs rendered by default, want none (reports.installCRDs=false)", n)
	}
}

// checkDiscovererExempt: both webhooks skip UPDATEs by the discoverer's ServiceAccount sa ("": no
// such condition).
func checkDiscovererExempt(t *testing.T, m *manifest, sa string) {
	t.Helper()
	v, mu := webhookConfigurations(t, m)
	for kind, conds := range map[string][]admissionregistrationv1.MatchCondition{"validating": v.Webhooks[0].MatchConditions, "mutating": mu.Webhooks[0].MatchConditions} {
		var found []string
		for _, c := range conds {
			if c.Name == "exempt-discoverer-updates" {
				found = append(found, c.Expression)
			}
		}
		switch want := "request.userInfo.username == 'system:serviceaccount:" + releaseNamespace + ":" + sa + "'"; {
		case sa == "" && len(found) > 0:
			t.Errorf("%s webhook exempts a discoverer that does not exist: %v", kind, found)
		case sa != "" && (len(found) != 1 || !strings.Contains(found[0], want) || !strings.Contains(found[0], "request.operation == 'UPDATE'")):
			t.Errorf("%s webhook match conditions %v do not exempt UPDATEs by %s", kind, found, sa)
		}
	}
}

// tlsSecret returns the generated serving certificate Secret, which the webhook mounts.
func tlsSecret(t *testing.T, m *manifest) *corev1.Secret {
	t.Helper()
	var found *corev1.Secret
	for _, u := range m.ofKind("Secret") {
		s := convert[corev1.Secret](t, u)
		if s.Type == corev1.SecretTypeTLS {
			found = s
		}
	}
	if found == nil {
		t.Fatal("no kubernetes.io/tls Secret rendered")
	}
	d, _ := webhookDeployment(t, m)
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == found.Name }) {
		t.Errorf("the webhook does not mount the generated Secret %s", found.Name)
	}
	return found
}

// dnsNamesOf are the names the API server uses to call the webhook Service.
func dnsNamesOf(t *testing.T, m *manifest) []string {
	t.Helper()
	svc := mustComponent(t, m, "Service", "webhook")
	return []string{
		fmt.Sprintf("%s.%s.svc", svc.GetName(), svc.GetNamespace()),
		fmt.Sprintf("%s.%s.svc.cluster.local", svc.GetName(), svc.GetNamespace()),
	}
}

// verifyServingCert: tls.crt and tls.key form a pair, and tls.crt chains to ca.crt for each name.
func verifyServingCert(t *testing.T, s *corev1.Secret, names []string) {
	t.Helper()
	if _, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"]); err != nil {
		t.Fatalf("Secret %s: tls.crt and tls.key do not form a key pair: %v", s.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatalf("Secret %s: ca.crt is not PEM", s.Name)
	}
	block, _ := pem.Decode(s.Data["tls.crt"])
	if block == nil {
		t.Fatalf("Secret %s: tls.crt is not PEM", s.Name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("Secret %s: certificate does not verify for %s: %v", s.Name, name, err)
		}
	}
}

// certificate returns the cert-manager Certificate and checks it feeds the webhook.
func certificate(t *testing.T, m *manifest) *unstructured.Unstructured {
	t.Helper()
	certs := m.ofKind("Certificate")
	if len(certs) != 1 {
		t.Fatalf("%d Certificates, want 1", len(certs))
	}
	c := certs[0]
	secretName, _, _ := unstructured.NestedString(c.Object, "spec", "secretName")
	d, _ := webhookDeployment(t, m)
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == secretName }) {
		t.Errorf("the webhook does not mount the Certificate's Secret %q", secretName)
	}
	dns, _, _ := unstructured.NestedStringSlice(c.Object, "spec", "dnsNames")
	for _, n := range dnsNamesOf(t, m) {
		if !slices.Contains(dns, n) {
			t.Errorf("Certificate dnsNames %v lack %s", dns, n)
		}
	}
	want := releaseNamespace + "/" + c.GetName()
	for _, h := range hookViews(t, m) {
		if len(h.cc.CABundle) != 0 {
			t.Errorf("%s webhook has a caBundle; cert-manager's cainjector owns it", h.kind)
		}
	}
	for _, k := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		if got := m.ofKind(k)[0].GetAnnotations()["cert-manager.io/inject-ca-from"]; got != want {
			t.Errorf("%s annotation cert-manager.io/inject-ca-from = %q, want %q", k, got, want)
		}
	}
	for _, u := range m.ofKind("Secret") {
		if u.Object["type"] == string(corev1.SecretTypeTLS) {
			t.Errorf("a TLS Secret %s is rendered; cert-manager writes it", u.GetName())
		}
	}
	return c
}

func checkCertManager(t *testing.T, m *manifest) {
	t.Helper()
	c := certificate(t, m)
	ref, _, _ := unstructured.NestedStringMap(c.Object, "spec", "issuerRef")
	issuers := m.ofKind("Issuer")
	if len(issuers) != 1 || ref["kind"] != "Issuer" || ref["name"] != issuers[0].GetName() {
		t.Fatalf("Certificate issuerRef %v does not name the chart's Issuer (%d rendered)", ref, len(issuers))
	}
	if _, ok, _ := unstructured.NestedMap(issuers[0].Object, "spec", "selfSigned"); !ok {
		t.Errorf("the chart's Issuer is not self-signed: %v", issuers[0].Object["spec"])
	}
}

func checkCertManagerClusterIssuer(t *testing.T, m *manifest) {
	t.Helper()
	c := certificate(t, m)
	ref, _, _ := unstructured.NestedStringMap(c.Object, "spec", "issuerRef")
	if ref["kind"] != "ClusterIssuer" || ref["name"] != "corp-ca" {
		t.Errorf("Certificate issuerRef %v, want the ClusterIssuer corp-ca", ref)
	}
	if n := len(m.ofKind("Issuer")); n != 0 {
		t.Errorf("%d Issuers rendered, want none with an issuerRef given", n)
	}
}

func checkUserTLS(t *testing.T, m *manifest, secretName, caPEM string) {
	t.Helper()
	d, _ := webhookDeployment(t, m)
	if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == secretName }) {
		t.Errorf("the webhook does not mount the user's Secret %s", secretName)
	}
	if n := len(m.ofKind("Secret")); n != 0 {
		t.Errorf("%d Secrets rendered; the user supplies the certificate", n)
	}
	for _, h := range hookViews(t, m) {
		if string(h.cc.CABundle) != caPEM {
			t.Errorf("%s webhook caBundle is not the user's CA", h.kind)
		}
	}
}

func checkSecretNamespaces(t *testing.T, m *manifest) {
	t.Helper()
	var nss []string
	for _, u := range m.ofKind("Role") {
		if u.GetLabels()["app.kubernetes.io/component"] == "webhook" {
			nss = append(nss, u.GetNamespace())
		}
	}
	slices.Sort(nss)
	if !slices.Equal(nss, []string{"gloo-system", "team-a"}) {
		t.Errorf("webhook Roles in %v, want exactly gloo-system and team-a", nss)
	}
}

func checkDiscovererOff(t *testing.T, m *manifest) {
	t.Helper()
	for _, o := range m.objects {
		if o.GetLabels()["app.kubernetes.io/component"] == "discoverer" {
			t.Errorf("%s %s rendered with the discoverer off", o.GetKind(), o.GetName())
		}
	}
	if d, _ := discovererDeployment(t, m); d != nil {
		t.Errorf("Deployment %s runs a discoverer container", d.Name)
	}
	checkDiscovererExempt(t, m, "")
}

func checkSidecar(t *testing.T, m *manifest) {
	t.Helper()
	d, _ := webhookDeployment(t, m)
	dd, _ := discovererDeployment(t, m)
	if dd == nil || dd.Name != d.Name {
		t.Fatalf("the discoverer does not run in the webhook pods")
	}
	for _, k := range []string{"Deployment", "ServiceAccount", "Service", "PodDisruptionBudget"} {
		if u := m.component(t, k, "discoverer"); u != nil {
			t.Errorf("sidecar mode renders a discoverer %s %s", k, u.GetName())
		}
	}
	checkDiscovererExempt(t, m, d.Spec.Template.Spec.ServiceAccountName)
	svc := convert[corev1.Service](t, mustComponent(t, m, "Service", "webhook"))
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "dsc-metrics" }) {
		t.Errorf("the webhook Service does not expose the discoverer's metrics: %+v", svc.Spec.Ports)
	}
}

// checkServiceMonitor: the ServiceMonitor selects both metrics Services and names ports they have.
func checkServiceMonitor(t *testing.T, m *manifest) {
	t.Helper()
	sms := m.ofKind("ServiceMonitor")
	if len(sms) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(sms))
	}
	sm := sms[0]
	if sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor labels %v lack the configured release=prometheus", sm.GetLabels())
	}
	matchLabels, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	var ports []string
	for _, e := range eps {
		p, _ := e.(map[string]any)["port"].(string)
		ports = append(ports, p)
	}
	for _, c := range []string{"webhook", "discoverer"} {
		svc := convert[corev1.Service](t, mustComponent(t, m, "Service", c))
		if !labels.SelectorFromSet(matchLabels).Matches(labels.Set(svc.Labels)) {
			t.Errorf("ServiceMonitor selector %v does not select the %s Service (labels %v)", matchLabels, c, svc.Labels)
		}
		if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return slices.Contains(ports, p.Name) }) {
			t.Errorf("ServiceMonitor endpoints %v name no port of the %s Service", ports, c)
		}
	}
	for _, u := range m.ofKind("Service") {
		if labels.SelectorFromSet(matchLabels).Matches(labels.Set(u.GetLabels())) &&
			u.GetLabels()["app.kubernetes.io/component"] != "webhook" && u.GetLabels()["app.kubernetes.io/component"] != "discoverer" {
			t.Errorf("ServiceMonitor also selects Service %s", u.GetName())
		}
	}
}

func checkEverythingChanged(t *testing.T, m *manifest) {
	t.Helper()
	v, mu := webhookConfigurations(t, m)
	vw, mw := v.Webhooks[0], mu.Webhooks[0]
	checkEC2Only(t, m, false)
	if *vw.FailurePolicy != admissionregistrationv1.Ignore || *mw.FailurePolicy != admissionregistrationv1.Fail {
		t.Errorf("failurePolicy validating %s mutating %s, want Ignore and Fail as configured", *vw.FailurePolicy, *mw.FailurePolicy)
	}
	for _, h := range []struct {
		ns, obj *metav1.LabelSelector
		timeout *int32
	}{{vw.NamespaceSelector, vw.ObjectSelector, vw.TimeoutSeconds}, {mw.NamespaceSelector, mw.ObjectSelector, mw.TimeoutSeconds}} {
		if h.ns == nil || h.ns.MatchLabels["ec2guard.io/enabled"] != "true" {
			t.Errorf("namespaceSelector %v, want the configured one", h.ns)
		}
		if h.obj == nil || len(h.obj.MatchExpressions) != 1 || h.obj.MatchExpressions[0].Key != "skip-ec2guard" {
			t.Errorf("objectSelector %v, want the configured one", h.obj)
		}
		if *h.timeout != 6 {
			t.Errorf("timeoutSeconds %d, want 6", *h.timeout)
		}
	}
	d, c := webhookDeployment(t, m)
	if c.Image != "ghcr.io/ec2guard/webhook:v9.9.9" {
		t.Errorf("webhook image %s, want the configured tag", c.Image)
	}
	_, dc := discovererDeployment(t, m)
	if dc.Image != "ghcr.io/ec2guard/discoverer@sha256:"+sha256Hex0 {
		t.Errorf("discoverer image %s, want the configured digest", dc.Image)
	}
	sa := convert[corev1.ServiceAccount](t, m.named("ServiceAccount", d.Spec.Template.Spec.ServiceAccountName))
	if sa.Annotations["eks.amazonaws.com/role-arn"] != "arn:aws:iam::111122223333:role/ec2guard-webhook" {
		t.Errorf("webhook ServiceAccount annotations %v lack the IRSA role", sa.Annotations)
	}
	if n := len(m.ofKind("PodDisruptionBudget")); n != 0 {
		t.Errorf("%d PodDisruptionBudgets with one replica each, want none", n)
	}
	// extraArgs come last, so they override the generated flag (the Go flag package keeps the last).
	if got := flagMap(c.Args)["iam-unknown-ttl"]; got != "20s" {
		t.Errorf("--iam-unknown-ttl resolves to %s, want the extraArgs value 20s", got)
	}
}

// leastReplicas is a Deployment's replicas, or its HorizontalPodAutoscaler's minReplicas.
func leastReplicas(t *testing.T, m *manifest, d *appsv1.Deployment) int32 {
	t.Helper()
	if d.Spec.Replicas != nil {
		return *d.Spec.Replicas
	}
	for _, u := range m.ofKind("HorizontalPodAutoscaler") {
		hpa := convert[autoscalingv2.HorizontalPodAutoscaler](t, u)
		if hpa.Spec.ScaleTargetRef.Name == d.Name && hpa.Spec.MinReplicas != nil {
			return *hpa.Spec.MinReplicas
		}
	}
	return 1
}
