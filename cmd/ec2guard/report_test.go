package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// dynamicFactory builds the cluster client of --kubeconfig (the path, "" for the default).
type dynamicFactory func(kubeconfigPath string) (dynamic.Interface, error)

func runReportTest(t *testing.T, newClient dynamicFactory, stdin string, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("KUBECONFIG", writeKubeconfig(t, "default"))
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errb)
	a.newDynamic = func() (dynamic.Interface, error) { return newClient(*a.kube.KubeConfig) }
	code := a.run(context.Background(), append([]string{"report"}, args...))
	return code, out.String(), errb.String()
}

// writeKubeconfig writes a kubeconfig whose current context has namespace ns; nothing listens at
// its server.
func writeKubeconfig(t *testing.T, ns string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	kc := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\"}\n" +
		"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u, namespace: " + ns + "}\ncurrent-context: x\n"
	if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noCluster(string) (dynamic.Interface, error) { return nil, errors.New("no cluster in this test") }

func TestReportFilesExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"passing", []string{"-f", "testdata/reports/passing.yaml"}, 0, []string{"team-a", "api", "eu-west-1", "restrictive-credentials-discerning-filters", "team-a/web", "overlap", "warn"}},
		{"failing", []string{"-f", "testdata/reports/list-with-failures.json"}, 1, []string{"gloo-system/legacy", "credentials-deny", "fail", "error"}},
		{"both", []string{"-f", "testdata/reports/passing.yaml", "-f", "testdata/reports/list-with-failures.json", "-o", "markdown"}, 1, []string{"## team-a/api", "## gloo-system/legacy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runReportTest(t, noCluster, "", tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errs)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestReportStdinAndFormats(t *testing.T) {
	in, err := os.ReadFile("testdata/reports/passing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"table", "json", "markdown", "html"} {
		code, out, errs := runReportTest(t, noCluster, string(in), "-f", "-", "-o", f)
		if code != 0 || !strings.Contains(out, "ec2guard-api") && !strings.Contains(out, "api") {
			t.Errorf("-o %s: exit %d, stderr %s, out %s", f, code, errs, out)
		}
	}
	_, out, _ := runReportTest(t, noCluster, string(in), "-f", "-", "-o", "html")
	if !strings.HasPrefix(out, "<!DOCTYPE html>") {
		t.Errorf("html output is not a page: %.80s", out)
	}
}

func TestReportUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "xml", "-f", "testdata/reports/passing.yaml"}, `-o "xml"`},
		{[]string{"-f", "testdata/reports/missing.yaml"}, "missing.yaml"},
		{[]string{"-f", "testdata/reports/not-a-report.yaml"}, `not-a-report.yaml: document 1: apiVersion "v1" kind "ConfigMap"`},
		{[]string{"-f", "x", "-A"}, "one or the other"},
		{[]string{"-n", "a", "-A"}, "exclude each other"},
		{[]string{"--nope"}, "unknown flag: --nope"},
		{[]string{"extra"}, "unexpected arguments"},
		{nil, "no cluster in this test"},
	} {
		code, _, errs := runReportTest(t, noCluster, "", tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
}

func fakeReport(ns, name, result string, managed bool) *unstructured.Unstructured {
	labels := map[string]any{}
	if managed {
		labels["app.kubernetes.io/managed-by"] = "ec2guard"
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "openreports.io/v1alpha1", "kind": "Report",
		"metadata": map[string]any{"name": "ec2guard-" + name, "namespace": ns, "labels": labels},
		"source":   "ec2guard",
		"scope":    map[string]any{"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "namespace": ns, "name": name},
		"results":  []any{map[string]any{"policy": "iam", "result": result, "message": "m"}},
	}}
}

func TestReportFromCluster(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "openreports.io", Version: "v1alpha1", Resource: "reports"}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "ReportList"},
		fakeReport("default", "a", "pass", true), fakeReport("team-b", "b", "fail", true), fakeReport("default", "c", "fail", false))
	var gotPath string
	factory := func(p string) (dynamic.Interface, error) { gotPath = p; return client, nil }

	kc := writeKubeconfig(t, "default")
	code, out, errs := runReportTest(t, factory, "", "--kubeconfig", kc)
	if code != 0 || gotPath != kc || !strings.Contains(out, "default") || strings.Contains(out, " c ") || strings.Contains(out, "team-b") {
		t.Errorf("default namespace: exit %d, path %q, stderr %s\n%s", code, gotPath, errs, out)
	}
	code, out, _ = runReportTest(t, factory, "", "-A")
	if code != 1 || !strings.Contains(out, "team-b") || strings.Contains(out, "ec2guard-c") {
		t.Errorf("all namespaces: exit %d\n%s", code, out)
	}
	code, out, _ = runReportTest(t, factory, "", "-n", "team-b", "-o", "json")
	if code != 1 || !strings.Contains(out, `"name": "ec2guard-b"`) || strings.Contains(out, "ec2guard-a") {
		t.Errorf("-n team-b: exit %d\n%s", code, out)
	}
}
