package chart_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// ec2ConditionName is the chart's default matchCondition sending only EC2 Upstreams.
const ec2ConditionName = "ec2-upstreams-only"

// matchConditions returns the conditions of the validating and the mutating webhook.
func matchConditions(t *testing.T, m *manifest) map[string][]admissionregistrationv1.MatchCondition {
	t.Helper()
	v, mu := webhookConfigurations(t, m)
	return map[string][]admissionregistrationv1.MatchCondition{"validating": v.Webhooks[0].MatchConditions, "mutating": mu.Webhooks[0].MatchConditions}
}

// checkEC2Only: with want, both webhooks start with the EC2-only condition, which looks at the new
// and the old object and at both EC2 shapes in both spellings; without, neither has it.
func checkEC2Only(t *testing.T, m *manifest, want bool) {
	t.Helper()
	for kind, conds := range matchConditions(t, m) {
		i := slices.IndexFunc(conds, func(c admissionregistrationv1.MatchCondition) bool { return c.Name == ec2ConditionName })
		switch {
		case !want && i >= 0:
			t.Errorf("%s webhook has %s with onlyEC2Upstreams=false", kind, ec2ConditionName)
		case want && i != 0:
			t.Errorf("%s webhook: %s is at %d of %v, want first", kind, ec2ConditionName, i, conds)
		case want:
			for _, part := range []string{"object != null", "oldObject != null", "object.spec.awsEc2", "object.spec.aws_ec2",
				"object.spec.upstreamSpec.awsEc2", "object.spec.upstream_spec.aws_ec2", "oldObject.spec.upstreamSpec.awsEc2"} {
				if !strings.Contains(conds[0].Expression, part) {
					t.Errorf("%s webhook: %s does not look at %s: %s", kind, ec2ConditionName, part, conds[0].Expression)
				}
			}
		}
	}
}

// checkExcludedNamespaces: both namespaceSelectors exclude exactly these namespaces by name (nil:
// no exclusion expression).
func checkExcludedNamespaces(t *testing.T, m *manifest, want []string) {
	t.Helper()
	v, mu := webhookConfigurations(t, m)
	for kind, sel := range map[string]*metav1.LabelSelector{"validating": v.Webhooks[0].NamespaceSelector, "mutating": mu.Webhooks[0].NamespaceSelector} {
		var got []string
		if sel != nil {
			for _, e := range sel.MatchExpressions {
				if e.Key == "kubernetes.io/metadata.name" && e.Operator == metav1.LabelSelectorOpNotIn {
					got = append(got, e.Values...)
				}
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s webhook excludes namespaces %v, want %v (selector %+v)", kind, got, want, sel)
		}
	}
}

// checkAdmissionScopeCustom: the user's condition comes after the chart's (all must hold), the
// user's namespaceSelector is kept and nothing is excluded when the exclusions are emptied.
func checkAdmissionScopeCustom(t *testing.T, m *manifest) {
	t.Helper()
	checkEC2Only(t, m, true)
	checkExcludedNamespaces(t, m, nil)
	for kind, conds := range matchConditions(t, m) {
		var names []string
		for _, c := range conds {
			names = append(names, c.Name)
		}
		if want := []string{ec2ConditionName, "exempt-argo", "exempt-discoverer-updates"}; !slices.Equal(names, want) {
			t.Errorf("%s webhook match conditions %v, want %v", kind, names, want)
		}
	}
	v, _ := webhookConfigurations(t, m)
	if sel := v.Webhooks[0].NamespaceSelector; sel == nil || sel.MatchLabels["team"] != "payments" {
		t.Errorf("namespaceSelector %+v lost the configured matchLabels", sel)
	}
}

// moduleDir is the directory of a Go module in the module cache, at the version go.mod requires.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v %s", module, err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkReportsCRDs: reports.installCRDs renders the Report and ClusterReport CRDs of the
// openreports.io/v1alpha1 API the discoverer writes, identical (apart from the chart's labels and
// the keep policy) to those of the reports-api module ec2guard is built with.
func checkReportsCRDs(t *testing.T, m *manifest) {
	t.Helper()
	crds := m.ofKind("CustomResourceDefinition")
	if len(crds) != 2 {
		t.Fatalf("%d CRDs rendered, want Report and ClusterReport", len(crds))
	}
	dir := filepath.Join(moduleDir(t, "github.com/openreports/reports-api"), "config", "crd")
	for _, file := range []string{"openreports.io_reports.yaml", "openreports.io_clusterreports.yaml"} {
		want, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		var upstream apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(want, &upstream); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		rendered := m.named("CustomResourceDefinition", upstream.Name)
		if rendered == nil {
			t.Errorf("CRD %s (%s) not rendered", upstream.Name, file)
			continue
		}
		got := convert[apiextensionsv1.CustomResourceDefinition](t, rendered)
		if got.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s is not kept on uninstall: %v", got.Name, got.Annotations)
		}
		a, _ := yaml.Marshal(got.Spec)
		b, _ := yaml.Marshal(upstream.Spec)
		if !bytes.Equal(a, b) {
			t.Errorf("CRD %s differs from %s of the reports-api module", got.Name, file)
		}
		served := slices.ContainsFunc(got.Spec.Versions, func(v apiextensionsv1.CustomResourceDefinitionVersion) bool { return v.Name == "v1alpha1" && v.Served })
		if got.Spec.Group != "openreports.io" || !served {
			t.Errorf("CRD %s does not serve openreports.io/v1alpha1", got.Name)
		}
	}
}

// TestReportsCRDFilesPinned: the chart's copies are byte-identical to the module's files.
func TestReportsCRDFilesPinned(t *testing.T) {
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(moduleDir(t, "github.com/openreports/reports-api"), "config", "crd")
	for _, file := range []string{"openreports.io_reports.yaml", "openreports.io_clusterreports.yaml"} {
		want, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, chartPath, "files", "openreports", file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/files/openreports/%s differs from %s: copy it again after a reports-api upgrade", chartPath, file, dir)
		}
	}
}
