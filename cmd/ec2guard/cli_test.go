package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/creack/pty"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/internal/version"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// runCLI runs `ec2guard args...` and returns exit code, stdout and stderr.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const upstreamDoc = `apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: %s, namespace: team-a}
spec:
  awsEc2:
    region: us-east-1
    filters:
    - kvPair: {key: app, value: web}
`

func upstreamNamed(name string) string { return strings.Replace(upstreamDoc, "%s", name, 1) }

func TestOutputShorthandAndYAML(t *testing.T) {
	dir := writeTree(t, map[string]string{"u.yaml": upstreamNamed("a")})
	code, out, stderr := runCLI(t, "", "check", "-f", filepath.Join(dir, "u.yaml"), "-ojson")
	if code != 0 {
		t.Fatalf("-ojson: exit %d\n%s", code, stderr)
	}
	var j jsonOutput
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(j.Results) != 1 || j.Results[0].Line != 1 || j.Results[0].File != filepath.Join(dir, "u.yaml") {
		t.Fatalf("-ojson output %q: %v", out, err)
	}
	code, out, _ = runCLI(t, "", "check", "--filename="+filepath.Join(dir, "u.yaml"), "--output", "yaml")
	var y jsonOutput
	if err := yaml.UnmarshalStrict([]byte(out), &y); err != nil || code != 0 || !reflect.DeepEqual(j, y) {
		t.Fatalf("-o yaml gives %q (exit %d, %v); want the JSON document %+v", out, code, err, j)
	}
}

func TestRecursiveAndSkippedSubdirectories(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"top.yaml":    upstreamNamed("top"),
		"sub/one.yml": upstreamNamed("one"),
		"sub/deeper/two.json": `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"two","namespace":"team-a"},` +
			`"spec":{"awsEc2":{"region":"us-east-1","filters":[{"key":"app"}]}}}`,
		"sub/ignored.txt": "not a manifest",
	})
	code, out, stderr := runCLI(t, "", "check", "-f", dir)
	if code != 0 || !strings.Contains(out, "1 EC2 upstream checked") {
		t.Fatalf("without -R: exit %d\n%s\n%s", code, out, stderr)
	}
	if want := "1 subdirectory not read (use -R to descend): " + filepath.Join(dir, "sub"); !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	code, out, stderr = runCLI(t, "", "check", "-R", "-f", dir)
	if code != 0 || !strings.Contains(out, "3 EC2 upstreams checked") || strings.Contains(stderr, "not read") {
		t.Fatalf("-R: exit %d\n%s\n%s", code, out, stderr)
	}
}

func TestStrictInputErrorsNameFileLineAndField(t *testing.T) {
	dup := "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: d, namespace: n}\nspec:\n  awsEc2:\n    region: us-east-1\n    region: eu-west-1\n"
	unknown := "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: u, namespace: n}\nspec:\n  awsEc2:\n    region: us-east-1\n    filters:\n    - kvPair: {key: a, vaule: b}\n"
	dir := writeTree(t, map[string]string{"dup.yaml": dup, "unknown.yaml": unknown, "bad.yaml": "a: [1, 2\n"})
	for _, tc := range []struct{ file, want string }{
		{"dup.yaml", "dup.yaml:7: document 1: spec.awsEc2.region: duplicate key \"region\" (first at line 6)"},
		{"unknown.yaml", "unknown.yaml:8: document 1: spec.awsEc2.filters[0].kvPair.vaule: EC2G004 unknown field \"vaule\""},
		{"bad.yaml", "bad.yaml:1: document 1: not valid YAML"},
	} {
		code, out, stderr := runCLI(t, "", "check", "-f", filepath.Join(dir, tc.file))
		if code != 2 || !strings.Contains(stderr, tc.want) || out != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and %q", tc.file, code, out, stderr, tc.want)
		}
	}
	// The same through stdin names <stdin>.
	code, _, stderr := runCLI(t, dup, "check", "-f", "-")
	if code != 2 || !strings.Contains(stderr, "<stdin>:7: document 1: spec.awsEc2.region: duplicate key") {
		t.Errorf("stdin: exit %d, stderr %q", code, stderr)
	}
}

func TestNoEC2UpstreamExits2(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\n"
	code, out, stderr := runCLI(t, cm, "check", "-f", "-", "-f", seedSecret)
	if code != 2 || !strings.Contains(stderr, "no EC2 Upstream found: found 2 ConfigMaps, 1 Secret (use --allow-empty") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = runCLI(t, cm, "check", "-f", "-", "--allow-empty")
	if code != 0 || !strings.Contains(out, "0 EC2 upstreams checked") {
		t.Errorf("--allow-empty: exit %d, %q", code, out)
	}
	code, _, stderr = runCLI(t, "", "check", "-f", "-")
	if code != 2 || !strings.Contains(stderr, "the inputs hold no Kubernetes objects") {
		t.Errorf("empty stdin: exit %d, %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	want := version.Get()
	code, out, _ := runCLI(t, "", "--version")
	if code != 0 || out != want.String()+"\n" {
		t.Errorf("--version: exit %d %q, want %q", code, out, want.String())
	}
	code, out, _ = runCLI(t, "", "version")
	if code != 0 || out != want.String()+"\n" {
		t.Errorf("version: exit %d %q", code, out)
	}
	code, out, _ = runCLI(t, "", "version", "-o", "json")
	var got version.Info
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || got != want || !strings.Contains(out, `"goVersion"`) {
		t.Errorf("version -o json: exit %d %q (%v)", code, out, err)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "__start_ec2guard", "zsh": "#compdef ec2guard", "fish": "complete -c ec2guard", "powershell": "Register-ArgumentCompleter",
	} {
		code, out, stderr := runCLI(t, "", "completion", shell)
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, stderr %q, output lacks %q", shell, code, stderr, want)
		}
	}
	// The completion scripts call `ec2guard __complete`: -o offers the command's formats.
	code, out, _ := runCLI(t, "", "__complete", "check", "-o", "")
	if code != 0 || !strings.HasPrefix(out, "text\njson\nyaml\n") {
		t.Errorf("__complete check -o: exit %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "", "completion", "tcsh"); code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", code)
	}
}

func TestEveryCommandHasHelpWithExamples(t *testing.T) {
	for _, cmd := range []string{"check", "simulate", "report", "preview", "version", "completion"} {
		code, out, _ := runCLI(t, "", cmd, "--help")
		if code != 0 || !strings.Contains(out, "Examples:\n  ") || !strings.Contains(out, "ec2guard "+cmd) {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, out)
		}
	}
	code, out, _ := runCLI(t, "", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "preview") {
		t.Errorf("--help: exit %d\n%s", code, out)
	}
	code, _, stderr := runCLI(t, "")
	if code != 2 || !strings.Contains(stderr, "Available Commands:") {
		t.Errorf("no command: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "", "nope")
	if code != 2 || !strings.Contains(stderr, `unknown command "nope"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
}

func TestColorsOnlyOnATerminal(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	var buf bytes.Buffer
	if newStyle(&buf, env(nil)).on {
		t.Error("colors on for a buffer")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if newStyle(f, env(nil)).on {
		t.Error("colors on for a regular file")
	}
	if (style{on: true}).red("x") != "\x1b[31mx\x1b[0m" || (style{}).red("x") != "x" {
		t.Error("style.red")
	}
	// The text output of a check written to a buffer carries no escape codes.
	_, out, _ := runCLI(t, "", "check", "-f", examplesDir+"/broken/EC2G101-key-and-kvpair.yaml", "-f", seedSecret)
	if strings.Contains(out, "\x1b[") {
		t.Errorf("escape codes in non-terminal output:\n%q", out)
	}
}

func TestNearMissReasons(t *testing.T) {
	filters := []ec2.Filter{ec2.KVFilter("app", "web"), ec2.KeyFilter("team")}
	for _, tc := range []struct {
		name string
		tags map[string]string
		near bool
		want string
	}{
		{"key case", map[string]string{"App": "web", "team": "x"}, true, `tag key "App" differs from filter key "app" only in case`},
		{"value case", map[string]string{"app": "Web", "team": "x"}, true, `tag app: value "Web" differs only in case from "web"`},
		{"value whitespace", map[string]string{"app": " web", "team": "x"}, true, `differs only in surrounding whitespace from "web"`},
		{"key-only case", map[string]string{"app": "web", "TEAM": "x"}, true, `tag key "TEAM" differs from filter key "team" only in case`},
		{"two near reasons", map[string]string{"APP": "WEB ", "Team": ""}, true, `and its value "WEB " differs only in case and surrounding whitespace from "web"`},
		{"other value", map[string]string{"app": "api", "team": "x"}, false, ""},
		{"missing key", map[string]string{"app": "web"}, false, ""},
		{"exact match", map[string]string{"app": "web", "team": "x"}, false, ""},
	} {
		reasons, near := nearMissReasons(filters, tc.tags)
		if near != tc.near || (tc.near && !strings.Contains(strings.Join(reasons, "; "), tc.want)) {
			t.Errorf("%s: near %v reasons %q; want %v with %q", tc.name, near, reasons, tc.near, tc.want)
		}
	}
}

func TestPreviewRefusesNonLoopbackEndpoint(t *testing.T) {
	dir := writeTree(t, map[string]string{"u.yaml": upstreamNamed("a")})
	code, _, stderr := runCLI(t, "", "preview", "-f", filepath.Join(dir, "u.yaml"), "--aws-endpoint", "https://ec2.us-east-1.amazonaws.com")
	if code != 2 || !strings.Contains(stderr, "not a loopback address") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "", "preview", "-f", filepath.Join(dir, "u.yaml"), "--aws-endpoint", "http://127.0.0.1:1")
	if code != 2 || !strings.Contains(stderr, "no secretRef") {
		t.Errorf("no secretRef: exit %d, stderr %q", code, stderr)
	}
}

func TestFilenameForms(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.yaml": upstreamNamed("a"), "b.yaml": upstreamNamed("b")})
	// Comma-separated, like kubectl's -f.
	code, out, stderr := runCLI(t, "", "check", "-f", filepath.Join(dir, "a.yaml")+","+filepath.Join(dir, "b.yaml"))
	if code != 0 || !strings.Contains(out, "2 EC2 upstreams checked") {
		t.Errorf("comma-separated -f: exit %d\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = runCLI(t, "", "check", "-f", "https://example.com/u.yaml")
	if code != 2 || !strings.Contains(stderr, "URLs are not read") {
		t.Errorf("URL: exit %d, stderr %q", code, stderr)
	}
	// -n gives the namespace of objects without one.
	noNS := strings.Replace(upstreamNamed("c"), ", namespace: team-a", "", 1)
	code, out, _ = runCLI(t, noNS, "check", "-f", "-", "-n", "team-z", "-ojson")
	if code != 0 || !strings.Contains(out, `"upstream": "team-z/c"`) {
		t.Errorf("-n with -f: exit %d %s", code, out)
	}
}

func TestCheckFromClusterUsageErrors(t *testing.T) {
	t.Setenv("KUBECONFIG", writeKubeconfig(t, "team-a"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "-f", seedSecret, "--from-cluster"}, "use one or the other"},
		{[]string{"check", "-A", "-n", "x"}, "-n and -A exclude each other"},
		{[]string{"check", "--from-cluster", "-R"}, "-R applies to -f directories"},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q", tc.args, code, stderr)
		}
	}
	// The namespace comes from the kubeconfig's context; nothing listens at its server.
	code, _, stderr := runCLI(t, "", "check", "--from-cluster")
	if code != 2 || !strings.Contains(stderr, "list upstreams in namespace team-a") {
		t.Errorf("--from-cluster: exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t, "", "check", "-n", "team-b")
	if code != 2 || !strings.Contains(stderr, "list upstreams in namespace team-b") {
		t.Errorf("-n: exit %d, stderr %q", code, stderr)
	}
}

// TestColorsOnATerminal runs check with its stdout on a pseudo-terminal: colored, unless NO_COLOR.
func TestColorsOnATerminal(t *testing.T) {
	for _, noColor := range []string{"", "1"} {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal here: %v", err)
		}
		read := make(chan string, 1)
		go func() {
			var b bytes.Buffer
			_, _ = io.Copy(&b, ptmx) // ends with EIO once tty is closed
			read <- b.String()
		}()
		var errb bytes.Buffer
		a := newApp(strings.NewReader(""), tty, &errb)
		a.getenv = func(k string) string {
			if k == "NO_COLOR" {
				return noColor
			}
			return ""
		}
		code := a.run(context.Background(), []string{"check", "-f", examplesDir + "/broken/EC2G101-key-and-kvpair.yaml", "-f", seedSecret})
		tty.Close()
		out := <-read
		ptmx.Close()
		colored := strings.Contains(out, "\x1b[31mREJECTED\x1b[0m") && strings.Contains(out, "\x1b[31merror\x1b[0m EC2G101")
		if code != 1 || colored != (noColor == "") || (noColor != "" && strings.Contains(out, "\x1b[")) {
			t.Errorf("NO_COLOR=%q: exit %d, colored %v:\n%q\n%s", noColor, code, colored, out, errb.String())
		}
	}
}

func TestPlural(t *testing.T) {
	for in, want := range map[string]string{"Secret": "2 Secrets", "subdirectory": "2 subdirectories", "Gateway": "2 Gateways",
		"near miss": "2 near misses", "policy file": "2 policy files"} {
		if got := plural(2, in); got != want {
			t.Errorf("plural(2, %q) = %q, want %q", in, got, want)
		}
	}
	if got := plural(1, "near miss"); got != "1 near miss" {
		t.Errorf("plural(1) = %q", got)
	}
}
