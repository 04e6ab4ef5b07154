package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenReports are three Upstreams: one with warnings, one without filters, one whose
// credentials are denied and whose group is stale; a filter value carries markup to escape.
func goldenReports() []Report {
	open := Input{Upstream: upstream("all"), UID: "uid-all", Now: now, Status: discovered.Status{
		Count: 3, Matched: 3, IAM: allowed(), Consistency: string(policycheck.PermissiveCredentialsNoFilters), Group: "default|us-east-1|"}}
	deny := Input{Upstream: upstream("legacy", ec2.KVFilter("app", `<script>alert("x")</script> | *y*`)), UID: "uid-legacy", Now: now, Status: discovered.Status{
		IAM: &discovered.IAMStatus{Principal: "arn:aws:iam::123456789012:user/seed", Decision: verdict.DecisionImplicitDeny, Source: verdict.SourceListing,
			Sources: []discovered.SourceDecision{{Source: verdict.SourceListing, Decision: verdict.DecisionImplicitDeny, Reason: "UnauthorizedOperation: You are not authorized to perform this operation."},
				{Source: verdict.SourceLocal, Decision: verdict.DecisionImplicitDeny, Reason: `no statement allows ec2:DescribeInstances on "*" (statement "TagScoped" is scoped to ec2:ResourceTag/app)`}}},
		Consistency: string(policycheck.CredentialsDeny), Stale: true, StaleSince: "2026-11-30T09:00:00Z",
		LastError: "list running instances in us-east-1: UnauthorizedOperation: You are not authorized to perform this operation.",
		Group:     "secret/gloo-system/seed|us-east-1|"}}
	var out []Report
	for _, in := range []Input{webInput(), open, deny} {
		out = append(out, *Build(in))
	}
	return out
}

func TestRenderGolden(t *testing.T) {
	ext := map[string]string{FormatTable: "txt", FormatJSON: "json", FormatMarkdown: "md", FormatHTML: "html"}
	for _, f := range Formats() {
		t.Run(f, func(t *testing.T) {
			var b bytes.Buffer
			if err := Render(&b, f, goldenReports()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "reports."+ext[f])
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s (run with -update after checking the change):\n%s", f, path, b.String())
			}
		})
	}
}

func TestRenderHTMLEscapes(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, FormatHTML, goldenReports()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") {
		t.Error("a filter value was not escaped")
	}
	if !strings.Contains(b.String(), "&lt;script&gt;") {
		t.Error("the escaped filter value is missing")
	}
}

func TestRenderMarkdownEscapesCells(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, FormatMarkdown, goldenReports()); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if strings.Contains(line, "script") && (strings.Contains(line, "<script>") || strings.Contains(line, " | *y*")) {
			t.Errorf("unescaped cell: %s", line)
		}
	}
}

func TestRenderJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	in := goldenReports()
	if err := Render(&b, FormatJSON, in); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&b, "out.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d reports back, want %d", len(got), len(in))
	}
	for i := range in {
		if !Equal(&in[i], &got[i]) {
			t.Errorf("report %d changed in the round trip", i)
		}
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	if err := Render(&bytes.Buffer{}, "xml", nil); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Errorf("err = %v", err)
	}
}

func TestFailing(t *testing.T) {
	rs := goldenReports()
	if !Failing(rs) || Failing(rs[:2]) {
		t.Error("Failing must be true exactly when a result is fail or error")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"apiVersion: v1\nkind: ConfigMap\n", `document 1: apiVersion "v1" kind "ConfigMap"`},
		{"apiVersion: openreports.io/v1alpha1\nkind: Report\n---\n[1, 2\n", "document 2"},
		{"kind: List\nitems:\n- {apiVersion: v1, kind: Pod}\n", "items[0]"},
	} {
		_, err := Decode(strings.NewReader(tc.in), "in.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "in.yaml") {
			t.Errorf("Decode(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestDecodeMultiDocAndList(t *testing.T) {
	in := "apiVersion: openreports.io/v1alpha1\nkind: Report\nmetadata: {name: a, namespace: ns1}\n---\n" +
		"apiVersion: openreports.io/v1alpha1\nkind: ReportList\nitems:\n- apiVersion: openreports.io/v1alpha1\n  kind: Report\n  metadata: {name: b}\n---\n"
	got, err := Decode(strings.NewReader(in), "in.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "b" {
		t.Errorf("got %+v", got)
	}
}
