package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

const (
	examplesDir = "../../examples"
	seedSecret  = examplesDir + "/seed-secret.yaml"
)

// runCheckTest runs `ec2guard check args...` with stdin and returns exit code, stdout and stderr.
func runCheckTest(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"check"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// checkJSON runs with -o json and decodes the output into the documented shape.
func checkJSON(t *testing.T, args ...string) (int, jsonOutput) {
	t.Helper()
	code, out, stderr := runCheckTest(t, "", append(args, "-o", "json")...)
	var res jsonOutput
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("JSON output does not decode: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	return code, res
}

func TestCheckTutorialLegacyAndV1SameVerdict(t *testing.T) {
	codeL, legacy := checkJSON(t, "-f", examplesDir+"/seed-upstream-demo.yaml", "-f", seedSecret)
	codeV, v1 := checkJSON(t, "-f", examplesDir+"/seed-upstream-demo-v1.yaml", "-f", seedSecret)
	if codeL != 0 || codeV != 0 {
		t.Fatalf("exit codes %d, %d; want 0", codeL, codeV)
	}
	for _, r := range [][]jsonResult{legacy.Results, v1.Results} {
		if len(r) != 1 || r[0].File == "" || r[0].Line < 1 {
			t.Fatalf("results lack file and line: %+v", r)
		}
	}
	if legacy.Results[0].File != examplesDir+"/seed-upstream-demo.yaml" || legacy.Results[0].Line != 2 {
		t.Errorf("legacy upstream at %s:%d, want %s:2", legacy.Results[0].File, legacy.Results[0].Line, examplesDir+"/seed-upstream-demo.yaml")
	}
	legacy.Results[0].File, legacy.Results[0].Line = "", 0
	v1.Results[0].File, v1.Results[0].Line = "", 0
	if !reflect.DeepEqual(legacy, v1) {
		t.Fatalf("legacy and v1 verdicts differ:\n%+v\n%+v", legacy, v1)
	}
	r := legacy.Results
	if len(r) != 1 || r[0].Upstream != "gloo-system/ec2-demo-upstream" || !r[0].Allowed || len(r[0].Errors) != 0 || len(r[0].Warnings) != 0 {
		t.Errorf("result = %+v", r)
	}
	if r[0].IAM.Decision != "not-evaluated" || r[0].IAM.Source != "none" || r[0].Consistency != "unknown" {
		t.Errorf("IAM = %+v, consistency %q", r[0].IAM, r[0].Consistency)
	}
}

func TestCheckTextOutput(t *testing.T) {
	code, out, _ := runCheckTest(t, "", "-f", examplesDir+"/seed-upstream-demo.yaml", "-f", seedSecret)
	for _, want := range []string{
		"gloo-system/ec2-demo-upstream (" + examplesDir + "/seed-upstream-demo.yaml:2; legacy shape spec.upstreamSpec.awsEc2)\n",
		"\n  note: IAM not evaluated",
		"  gloo-system/ec2-demo-upstream: accepted — 0 errors, 0 warnings\n",
		"1 EC2 upstream checked: 1 accepted, 0 rejected; 0 errors, 0 warnings; IAM not evaluated",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}

	code, out, _ = runCheckTest(t, "", "-f", examplesDir+"/broken/EC2G101-key-and-kvpair.yaml", "-f", seedSecret)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"gloo-system/key-and-kvpair (" + examplesDir + "/broken/EC2G101-key-and-kvpair.yaml:4; legacy shape spec.upstreamSpec.awsEc2)\n" +
			"  error EC2G101 spec.upstreamSpec.awsEc2.filters[1]: exactly one of key or kvPair must be set",
		"\n      fix: ",
		"  gloo-system/key-and-kvpair: REJECTED — 1 error",
		"0 accepted, 1 rejected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// expectation is the `# expect: rejected|warning CODE FIELD` line of a broken example.
type expectation struct {
	verdict, code, field string
}

func readExpectation(t *testing.T, path string) expectation {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "# expect: "); ok {
			f := strings.Fields(rest)
			if len(f) != 3 {
				t.Fatalf("%s: bad expect line %q", path, line)
			}
			return expectation{f[0], f[1], f[2]}
		}
	}
	t.Fatalf("%s: no '# expect:' line", path)
	return expectation{}
}

func TestCheckBrokenExamples(t *testing.T) {
	files, err := filepath.Glob(examplesDir + "/broken/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no broken examples: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			exp := readExpectation(t, f)
			if !strings.HasPrefix(filepath.Base(f), exp.code+"-") {
				t.Fatalf("file name does not start with its code %s", exp.code)
			}
			seen[exp.code] = true
			if exp.code == string(codes.UnknownField) {
				// In a manifest an unknown awsEc2 field is an input error naming file:line and field.
				code, out, stderr := runCheckTest(t, "", "-f", seedSecret, "-f", f)
				if code != 2 || !regexp.MustCompile(regexp.QuoteMeta(f)+`:\d+: document 1: `+regexp.QuoteMeta(exp.field)+`: EC2G004 `).MatchString(stderr) {
					t.Errorf("exit %d, stderr %q, stdout %q; want 2 naming file:line and %s", code, stderr, out, exp.field)
				}
				return
			}
			code, res := checkJSON(t, "-f", seedSecret, "-f", f)
			if len(res.Results) != 1 {
				t.Fatalf("results = %+v", res.Results)
			}
			r := res.Results[0]
			switch exp.verdict {
			case "rejected":
				if code != 1 || r.Allowed {
					t.Errorf("exit %d allowed %v, want rejected", code, r.Allowed)
				}
				found := false
				for _, e := range r.Errors {
					found = found || (e.Code == exp.code && e.Field == exp.field)
				}
				if !found {
					t.Errorf("no error %s at %s: %+v", exp.code, exp.field, r.Errors)
				}
			case "warning":
				if code != 0 || !r.Allowed || len(r.Errors) != 0 {
					t.Errorf("exit %d allowed %v errors %+v, want accepted with a warning", code, r.Allowed, r.Errors)
				}
				found := false
				for _, w := range r.Warnings {
					found = found || strings.HasPrefix(w, exp.code+" "+exp.field+": ")
				}
				if !found {
					t.Errorf("no warning %s at %s: %q", exp.code, exp.field, r.Warnings)
				}
			default:
				t.Fatalf("unknown verdict %q", exp.verdict)
			}
			// The text output carries the same code and field on one line.
			_, out, _ := runCheckTest(t, "", "-f", seedSecret, "-f", f)
			if !strings.Contains(out, " "+exp.code+" "+exp.field+": ") {
				t.Errorf("text output lacks %s %s:\n%s", exp.code, exp.field, out)
			}
		})
	}
	// Every validation code has a broken example.
	for _, c := range ec2Codes() {
		// EC2G008 needs a deadline to pass in the middle of a check: no file can produce it
		// (pkg/ec2's TestCheckContextStopsWhenDone does).
		if !seen[c] && c != string(codes.CheckInterrupted) {
			t.Errorf("no example in examples/broken for %s", c)
		}
	}
}

// ec2Codes lists every declared code of the spec and secret rules (pkg/ec2's: EC2G0xx-3xx).
func ec2Codes() []string {
	var out []string
	for _, r := range codes.Rules() {
		if (r.Check == codes.CheckSpec || r.Check == codes.CheckSecret) && r.Code < "EC2G400" {
			out = append(out, string(r.Code))
		}
	}
	return out
}

func TestCheckJSONShape(t *testing.T) {
	_, out, _ := runCheckTest(t, "", "-f", examplesDir+"/broken/EC2G106-conflicting-values.yaml", "-f", examplesDir+"/broken/EC2G107-duplicate-filter.yaml",
		"-f", seedSecret, "--policy", examplesDir+"/fixed-policy.json", "-o", "json")
	var generic map[string]any
	if err := json.Unmarshal([]byte(out), &generic); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	if got := keys(generic); !reflect.DeepEqual(got, []string{"results"}) {
		t.Fatalf("top-level keys %v", got)
	}
	results := generic["results"].([]any)
	if len(results) != 2 {
		t.Fatalf("results: %d", len(results))
	}
	for _, r := range results {
		rm := r.(map[string]any)
		if got := keys(rm); !reflect.DeepEqual(got, []string{"allowed", "consistency", "errors", "file", "iam", "line", "upstream", "warnings"}) {
			t.Errorf("result keys %v", got)
		}
		if got := keys(rm["iam"].(map[string]any)); !reflect.DeepEqual(got, []string{"decision", "source"}) {
			t.Errorf("iam keys %v", got)
		}
		for _, e := range rm["errors"].([]any) {
			if got := keys(e.(map[string]any)); !reflect.DeepEqual(got, []string{"code", "field", "message"}) {
				t.Errorf("error keys %v", got)
			}
		}
		if _, ok := rm["warnings"].([]any); !ok {
			t.Errorf("warnings is not a list: %v", rm["warnings"])
		}
	}
	first := results[0].(map[string]any)
	if first["allowed"] != false || len(first["errors"].([]any)) != 1 {
		t.Errorf("conflicting-values result: %v", first)
	}
	second := results[1].(map[string]any)
	if second["allowed"] != true || len(second["warnings"].([]any)) != 1 {
		t.Errorf("duplicate-filter result: %v", second)
	}
}

func TestCheckMixedInputs(t *testing.T) {
	code, out, stderr := runCheckTest(t, "", "-f", "testdata/mixed.yaml")
	if code != 0 {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"gloo-system/static-one (testdata/mixed.yaml:30: document 2): not an EC2 upstream, skipped",
		"team-a/listed (testdata/mixed.yaml:5 item 1; shape spec.awsEc2)\n",
		"  team-a/listed: accepted — 0 errors, 0 warnings\n",
		"1 non-EC2 upstream skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "testdata/mixed.yaml:41: document 3: v1 ConfigMap ignored") {
		t.Errorf("stderr lacks the ConfigMap note:\n%s", stderr)
	}
}

func TestCheckDirectoryAndStdin(t *testing.T) {
	code, out, _ := runCheckTest(t, "", "-f", "testdata/dir")
	if code != 0 || !strings.Contains(out, "gloo-system/ec2-demo-upstream: accepted — 0 errors, 0 warnings") {
		t.Errorf("directory: exit %d\n%s", code, out)
	}
	upstream, err := os.ReadFile(examplesDir + "/broken/EC2G201-no-region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCheckTest(t, string(upstream), "-f", "-", "-f", seedSecret)
	if code != 1 || !strings.Contains(out, "EC2G201 spec.awsEc2.region: region is required") || !strings.Contains(out, "<stdin>:") {
		t.Errorf("stdin: exit %d\n%s", code, out)
	}
}

func TestCheckUsageAndInputErrors(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no files", nil, 2, "give -f FILENAME"},
		{"bad output", []string{"-f", seedSecret, "-o", "xml"}, 2, `-o must be one of text, json, yaml, not "xml"`},
		{"positional", []string{"-f", seedSecret, "extra"}, 2, `unexpected argument "extra"`},
		{"unknown flag", []string{"--nope"}, 2, "ec2guard check: unknown flag: --nope"},
		{"missing file", []string{"-f", "testdata/does-not-exist.yaml"}, 2, "testdata/does-not-exist.yaml"},
		{"bad yaml", []string{"-f", "testdata/bad-yaml.yaml"}, 2, "testdata/bad-yaml.yaml:12: document 2: not valid YAML"},
		{"bad yaml absolute line", []string{"-f", "testdata/bad-yaml.yaml"}, 2, "line 12"},
		{"scalar document", []string{"-f", "testdata/scalar.yaml"}, 2, "testdata/scalar.yaml:1: document 1: not a Kubernetes object"},
		{"bad secret", []string{"-f", "testdata/bad-base64-secret.yaml"}, 2, "Secret default/s is malformed"},
		{"bad policy", []string{"-f", seedSecret, "--policy", "testdata/bad-policy.json"}, 2, "policy testdata/bad-policy.json: not valid JSON"},
		{"missing policy", []string{"-f", seedSecret, "--policy", "testdata/nope.json"}, 2, "read policy testdata/nope.json"},
		{"stdin twice", []string{"-f", "-", "-f", "-"}, 2, "-f - given more than once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := runCheckTest(t, "", tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr:\n%s\nstdout:\n%s\nwant exit %d and %q", code, stderr, out, tc.code, tc.stderr)
			}
		})
	}
	code, out, _ := runCheckTest(t, "", "-h")
	if code != 0 || !strings.Contains(out, "ec2guard check (-f FILENAME") || !strings.Contains(out, "Examples:") {
		t.Errorf("-h: exit %d\n%s", code, out)
	}
}

func TestCheckWithoutPolicyDoesNotEvaluateIAM(t *testing.T) {
	code, out, _ := runCheckTest(t, "", "-f", examplesDir+"/seed-upstream-demo.yaml", "-f", seedSecret)
	if code != 0 || !strings.Contains(out, "IAM not evaluated: pass the principal's policies with --policy") {
		t.Errorf("exit %d\n%s", code, out)
	}
	_, res := checkJSON(t, "-f", examplesDir+"/seed-upstream-demo.yaml", "-f", seedSecret)
	if res.Results[0].IAM != (jsonIAM{Decision: "not-evaluated", Source: "none"}) || res.Results[0].Consistency != "unknown" {
		t.Errorf("iam = %+v, consistency %q", res.Results[0].IAM, res.Results[0].Consistency)
	}
}

// The issue #4 acceptance cases: the design notes' policy is rejected with the explanation, the
// fixed policy is accepted in its region and rejected with REGION_MISMATCH outside it.
func TestCheckPolicyEvaluatesIAM(t *testing.T) {
	upstreamIn := func(t *testing.T, region string) string {
		b, err := os.ReadFile(examplesDir + "/seed-upstream-demo.yaml")
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "upstream.yaml")
		if err := os.WriteFile(f, []byte(strings.ReplaceAll(string(b), "us-east-1", region)), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	cases := []struct {
		name, region, policy string
		code                 int
		decision             string
		consistency          string
		errCodes             []string
		text                 []string
	}{
		{"seed policy", "us-east-1", "seed-policy.json", 1, "implicitDeny", "credentials-deny",
			[]string{"EC2G501", "RESOURCE_MISMATCH", "UNSUPPORTED_CONDITION_KEY"},
			[]string{`statement #0`, `supports no resource-level permissions`, `"Resource": "*"`, `aws:RequestedRegion`, `never carry`, `keep tag scoping in the Upstream's filters`}},
		{"fixed policy", "us-east-1", "fixed-policy.json", 0, "allowed", "permissive-credentials-discerning-filters", nil, nil},
		{"fixed policy other region", "eu-west-1", "fixed-policy.json", 1, "implicitDeny", "credentials-deny",
			[]string{"EC2G501", "REGION_MISMATCH"}, []string{`DescribeInstancesInOneRegion`, `"eu-west-1"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res := checkJSON(t, "-f", upstreamIn(t, tc.region), "-f", seedSecret, "--policy", examplesDir+"/"+tc.policy)
			if code != tc.code || len(res.Results) != 1 {
				t.Fatalf("exit %d, results %+v", code, res.Results)
			}
			r := res.Results[0]
			if r.IAM != (jsonIAM{Decision: tc.decision, Source: "local"}) || r.Consistency != tc.consistency {
				t.Errorf("iam %+v consistency %q, want %s/local %s", r.IAM, r.Consistency, tc.decision, tc.consistency)
			}
			var codes []string
			var all strings.Builder
			for _, e := range r.Errors {
				codes = append(codes, e.Code)
				all.WriteString(e.Message + "\n")
			}
			if !reflect.DeepEqual(codes, tc.errCodes) {
				t.Errorf("error codes %v, want %v", codes, tc.errCodes)
			}
			for _, want := range tc.text {
				if !strings.Contains(all.String(), want) {
					t.Errorf("messages lack %q:\n%s", want, all.String())
				}
			}
		})
	}
}

func TestCheckPolicyNoFiltersWarns(t *testing.T) {
	f := filepath.Join(t.TempDir(), "nofilters.yaml")
	doc := "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: all, namespace: gloo-system}\n" +
		"spec:\n  awsEc2:\n    region: us-east-1\n    secretRef: {name: gloo-tag-group1, namespace: default}\n"
	if err := os.WriteFile(f, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, res := checkJSON(t, "-f", f, "-f", seedSecret, "--policy", examplesDir+"/fixed-policy.json")
	if code != 0 || res.Results[0].Consistency != "permissive-credentials-no-filters" {
		t.Fatalf("exit %d %+v", code, res.Results)
	}
	found := false
	for _, w := range res.Results[0].Warnings {
		found = found || strings.HasPrefix(w, "EC2G601 spec.awsEc2.filters:")
	}
	if !found {
		t.Errorf("no EC2G601 warning: %q", res.Results[0].Warnings)
	}
}

func TestCheckSecretNotAmongInputsIsWarning(t *testing.T) {
	code, res := checkJSON(t, "-f", examplesDir+"/seed-upstream-legacy.yaml")
	if code != 0 || len(res.Results) != 1 || !res.Results[0].Allowed {
		t.Fatalf("exit %d results %+v", code, res.Results)
	}
	w := res.Results[0].Warnings
	if len(w) != 1 || !strings.HasPrefix(w[0], "EC2G301 spec.upstreamSpec.awsEc2.secretRef: secret default/my-aws-secret is not among the inputs") {
		t.Errorf("warnings = %q", w)
	}
}

func TestCheckNeverPrintsSecretValues(t *testing.T) {
	b, err := os.ReadFile(seedSecret)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*aws_secret_access_key:\s*(\S{20,})\s*$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no aws_secret_access_key", seedSecret)
	}
	seedSecretKey := string(m[1]) // the broken examples reuse the seed secret's key
	for _, f := range []string{"EC2G305-secret-newline.yaml", "EC2G308-keys-swapped.yaml", "EC2G309-secret-key-length.yaml", "EC2G306-session-token-missing.yaml"} {
		for _, o := range []string{"text", "json"} {
			_, out, stderr := runCheckTest(t, "", "-f", examplesDir+"/broken/"+f, "-o", o)
			for _, secret := range []string{seedSecretKey[:13], seedSecretKey[len(seedSecretKey)-10:]} {
				if strings.Contains(out+stderr, secret) {
					t.Errorf("%s -o %s prints a secret value:\n%s\n%s", f, o, out, stderr)
				}
			}
		}
	}
}
