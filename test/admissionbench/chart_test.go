package admissionbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// helmEnv names the helm binary (make test-env).
const helmEnv = "EC2GUARD_HELM"

// releaseNamespace is the namespace the chart is rendered for (excluded by its namespaceSelector).
const releaseNamespace = "ec2guard-system"

// chartWebhookConfigurations renders the chart's two webhook configurations with its default
// values (namespaceSelector, CEL matchConditions, failure policies, timeouts as installed). envtest
// points their service clientConfig at the local webhook port and sets its CA.
func chartWebhookConfigurations(tb testing.TB) ([]*admissionregistrationv1.ValidatingWebhookConfiguration, []*admissionregistrationv1.MutatingWebhookConfiguration) {
	tb.Helper()
	bin := k8senv.RequireEnv(tb, helmEnv)
	root, err := k8senv.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	home := tb.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "template", "ec2guard", filepath.Join(root, "charts/ec2guard"),
		"--namespace", releaseNamespace, "--show-only", "templates/webhook-admission.yaml")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"), "KUBECONFIG="+filepath.Join(home, "no-kubeconfig"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("helm template: %v\n%s", err, stderr.String())
	}
	var validating []*admissionregistrationv1.ValidatingWebhookConfiguration
	var mutating []*admissionregistrationv1.MutatingWebhookConfiguration
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("read the rendered chart: %v", err)
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			tb.Fatalf("read the rendered chart: %v", err)
		}
		switch meta.Kind {
		case "ValidatingWebhookConfiguration":
			v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, v); err != nil {
				tb.Fatalf("read the chart's %s: %v", meta.Kind, err)
			}
			validating = append(validating, v)
		case "MutatingWebhookConfiguration":
			m := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, m); err != nil {
				tb.Fatalf("read the chart's %s: %v", meta.Kind, err)
			}
			mutating = append(mutating, m)
		}
	}
	if len(validating) != 1 || len(mutating) != 1 {
		tb.Fatalf("the chart rendered %d validating and %d mutating webhook configurations, want 1 and 1", len(validating), len(mutating))
	}
	return validating, mutating
}
