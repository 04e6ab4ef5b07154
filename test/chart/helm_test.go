// Package chart_test tests charts/ec2guard with the real helm binary (hack/helm.sh, $EC2GUARD_HELM):
// lint, rendering under several value sets with assertions on the objects, the render-time checks,
// the rendered command lines against the real cmd/webhook and cmd/discoverer flag parsers, and the
// rendered manifests against a real kube-apiserver (envtest), installed with helm and run with the
// chart's ServiceAccounts.
package chart_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/testenv"
)

// HelmEnv names the helm binary (hack/helm.sh).
const HelmEnv = "EC2GUARD_HELM"

const (
	chartPath        = "charts/ec2guard"
	releaseName      = "ec2guard"
	releaseNamespace = "ec2guard-system"
	helmTimeout      = 2 * time.Minute
)

// helm runs the helm binary with its own empty configuration, cache and data directories.
type helm struct {
	bin   string
	chart string
	env   []string
}

// newHelm finds the helm binary and the chart; without $EC2GUARD_HELM the test is skipped (or
// fails under EC2GUARD_INTEGRATION=1).
func newHelm(t *testing.T) *helm {
	t.Helper()
	bin := testenv.Require(t, HelmEnv)
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HELM_NAMESPACE=", "HELM_KUBECONTEXT=", "KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	return &helm{bin: bin, chart: filepath.Join(root, chartPath), env: env}
}

// run runs helm with args; err wraps the exit status and carries stderr.
func (h *helm) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), helmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = h.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if runErr := cmd.Run(); runErr != nil {
		return out.String(), errOut.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), runErr, strings.TrimSpace(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// valuesFile writes values as a YAML file for `-f`.
func valuesFile(t *testing.T, values map[string]any) string {
	t.Helper()
	if values == nil {
		values = map[string]any{}
	}
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatalf("marshal values: %v", err)
	}
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// template runs `helm template` with values and returns the manifest text.
func (h *helm) template(t *testing.T, values map[string]any) (string, error) {
	t.Helper()
	out, _, err := h.run("template", releaseName, h.chart, "--namespace", releaseNamespace, "-f", valuesFile(t, values))
	return out, err
}

// render is template that must succeed, parsed.
func (h *helm) render(t *testing.T, values map[string]any) *manifest {
	t.Helper()
	out, err := h.template(t, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	m, err := parseManifest(out)
	if err != nil {
		t.Fatalf("parse rendered manifest: %v\n%s", err, out)
	}
	m.raw = out
	return m
}

// manifest is a rendered chart.
type manifest struct {
	objects []*unstructured.Unstructured
	raw     string
}

// parseManifest splits a multi-document YAML stream into objects, skipping empty documents.
func parseManifest(text string) (*manifest, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(text)))
	m := &manifest{}
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read document: %w", err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("document %q: %w", firstLine(doc), err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("document without kind or name: %v", obj)
		}
		m.objects = append(m.objects, u)
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// ofKind returns the objects of kind.
func (m *manifest) ofKind(kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range m.objects {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// component returns the one object of kind labelled app.kubernetes.io/component=c, or nil.
func (m *manifest) component(t *testing.T, kind, c string) *unstructured.Unstructured {
	t.Helper()
	var found *unstructured.Unstructured
	for _, o := range m.ofKind(kind) {
		if o.GetLabels()["app.kubernetes.io/component"] == c {
			if found != nil {
				t.Fatalf("two %s objects of component %s: %s and %s", kind, c, found.GetName(), o.GetName())
			}
			found = o
		}
	}
	return found
}

// named returns the object of kind and name (any namespace), or nil.
func (m *manifest) named(kind, name string) *unstructured.Unstructured {
	for _, o := range m.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// convert decodes u into a typed object, failing on fields the type does not have.
func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}
