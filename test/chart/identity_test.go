package chart_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// renderExample renders the chart with one of its examples/ values files under release name.
func renderExample(t *testing.T, h *helm, release, example string) *manifest {
	t.Helper()
	out, _, err := h.run("template", release, h.chart, "--namespace", releaseNamespace, "-f", filepath.Join(h.chart, "examples", example))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseManifest(out)
	if err != nil {
		t.Fatal(err)
	}
	m.raw = out
	return m
}

// podServiceAccounts returns the ServiceAccount object each component's pods run as.
func podServiceAccounts(t *testing.T, m *manifest) map[string]*corev1.ServiceAccount {
	t.Helper()
	out := map[string]*corev1.ServiceAccount{}
	for _, c := range []string{"webhook", "discoverer"} {
		d := convert[appsv1.Deployment](t, mustComponent(t, m, "Deployment", c))
		u := m.named("ServiceAccount", d.Spec.Template.Spec.ServiceAccountName)
		if u == nil {
			t.Fatalf("the %s pods run as ServiceAccount %s, which the chart does not create", c, d.Spec.Template.Spec.ServiceAccountName)
		}
		out[c] = convert[corev1.ServiceAccount](t, u)
	}
	return out
}

// TestIRSAExample: each pod runs as a ServiceAccount annotated with its own role.
func TestIRSAExample(t *testing.T) {
	h := newHelm(t)
	m := renderExample(t, h, releaseName, "irsa.yaml")
	checkInvariants(t, m)
	for c, sa := range podServiceAccounts(t, m) {
		want := "arn:aws:iam::111122223333:role/ec2guard-" + c
		if got := sa.Annotations["eks.amazonaws.com/role-arn"]; got != want {
			t.Errorf("%s ServiceAccount %s: role-arn %q, want %q", c, sa.Name, got, want)
		}
		if sub := "system:serviceaccount:" + releaseNamespace + ":" + sa.Name; sub != "system:serviceaccount:ec2guard-system:ec2guard-"+c {
			t.Errorf("%s ServiceAccount subject %s differs from the one docs/iam/trust-irsa.json trusts", c, sub)
		}
	}
	if out, _, err := h.run("lint", "--strict", h.chart, "--namespace", releaseNamespace, "-f", filepath.Join(h.chart, "examples", "irsa.yaml")); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestPodIdentityExample: whatever the release name, the pods run as the ServiceAccounts the
// example's association commands name, without an IRSA annotation.
func TestPodIdentityExample(t *testing.T) {
	h := newHelm(t)
	text, err := os.ReadFile(filepath.Join(h.chart, "examples", "pod-identity.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var associated []string
	for _, m := range regexp.MustCompile(`--service-account (\S+)`).FindAllStringSubmatch(string(text), -1) {
		associated = append(associated, m[1])
	}
	if len(associated) != 2 {
		t.Fatalf("the example names %d ServiceAccounts in its association commands, want 2", len(associated))
	}
	for _, release := range []string{releaseName, "prod"} {
		m := renderExample(t, h, release, "pod-identity.yaml")
		checkInvariants(t, m)
		for c, sa := range podServiceAccounts(t, m) {
			if !slices.Contains(associated, sa.Name) || sa.Name != "ec2guard-"+c {
				t.Errorf("release %s: the %s pods run as %s, not the associated ec2guard-%s", release, c, sa.Name, c)
			}
			if _, ok := sa.Annotations["eks.amazonaws.com/role-arn"]; ok {
				t.Errorf("release %s: %s ServiceAccount has an IRSA annotation", release, c)
			}
		}
	}
}
