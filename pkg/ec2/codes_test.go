package ec2

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/codes.md from the code table")

const codesDocPath = "../../docs/codes.md"

// codesMarkdown renders docs/codes.md from Codes().
func codesMarkdown() string {
	var b strings.Builder
	b.WriteString(`# ec2guard validation codes

Every finding of ` + "`ec2guard check`" + ` and of the admission webhook starts with one of these codes, followed
by the field path where the value was written (` + "`spec.awsEc2...`" + ` or, for the legacy shape,
` + "`spec.upstreamSpec.awsEc2...`" + `), what is wrong, and how to fix it:

    EC2G101 spec.awsEc2.filters[1]: exactly one of key or kvPair must be set, this filter has neither; fix: ...

Severity is the default: ` + "`error`" + ` rejects the Upstream, ` + "`warning`" + ` is reported only. EC2G301 (secret not
found) is a warning in ` + "`ec2guard check`" + ` when the Secret is simply not among the input files. Codes are
stable: a code is never reused for another rule.

This table holds the spec and secret rules (EC2G0xx–EC2G3xx). The admission webhook's own rules —
secret access EC2G401–406 (the access gate, the opt-in annotation, the pod-identity allow-list),
IAM and credentials EC2G501–506, permissive credentials without filters EC2G601 — are listed in
` + "`docs/webhook.md`" + ` (defined in ` + "`pkg/admission/codes.go`" + ` and, for the IAM verdict shared by the
webhook, the discoverer and the CLI, ` + "`pkg/verdict/codes.go`" + `;
` + "`ec2guard check --policy`" + ` reports EC2G501, EC2G502 and EC2G601 too), and the IAM findings that follow an
IAM denial (` + "`RESOURCE_MISMATCH`" + `, ` + "`UNSUPPORTED_CONDITION_KEY`" + `, ` + "`INEFFECTIVE_DENY`" + `, ` + "`REGION_MISMATCH`" + `,
` + "`VARIABLE_IN_OLD_VERSION`" + `) in ` + "`docs/iam-semantics.md`" + `. The discoverer's refusals (EC2G701–705: a
Secret not shared with the Upstream's namespace, the pod identity not allowed, a publish failure,
discover-from-tags limits) are listed in ` + "`docs/discoverer.md`" + ` (` + "`pkg/discovery/codes.go`" + `).

This file is generated from ` + "`pkg/ec2/codes.go`" + ` (` + "`go test ./pkg/ec2 -run TestCodesDoc -update-docs`" + `).

| Code | Severity | Field | Rule | How to fix |
| --- | --- | --- | --- | --- |
`)
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, c := range Codes() {
		b.WriteString("| " + string(c.Code) + " | " + string(c.Severity) + " | `" + cell(c.Field) + "` | " + cell(c.Rule) + " | " + cell(c.Fix) + " |\n")
	}
	b.WriteString(`
Filter semantics behind the EC2G1xx rules: all filters must hold (AND); tag keys and values are compared
case-sensitively and exactly, as AWS does; ` + "`*`" + ` and ` + "`?`" + ` are literal. These are the semantics of the EC2 API's own tag filters
(` + "`key: K`" + ` as ` + "`tag-key=K`" + `, ` + "`kvPair`" + ` as ` + "`tag:K=V`" + `, with ` + "`*`" + `, ` + "`?`" + ` and ` + "`\\`" + ` escaped by ` + "`\\`" + ` in the filter
values, where EC2 treats them as wildcards): ec2guard lists the running instances and matches them in
memory, and a property test checks the matcher against a reference of EC2's filter evaluation.

Limits. DescribeInstances accepts up to 50 filters and up to 200 values per filter in one request,
and filter strings of up to 255 characters ([Amazon EC2 User Guide, "List and filter using the
command line", Filtering considerations](https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Filtering.html#Filtering_Resources_CLI));
an instance carries at most 50 user tags, keys of at most 128 and values of at most 256 characters
([Tag restrictions](https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions)).
Each Upstream filter is one EC2 filter with one value, so the 50-filter limit is the one an Upstream
can exceed: EC2G105 is checked first, and beyond it no other filter rule runs. Every other rule is
linear in the number of filters. One check reports at most ` + fmt.Sprint(MaxReportedErrors) + ` errors and ` + fmt.Sprint(MaxReportedWarnings) + ` warnings (each
text cut to ` + fmt.Sprint(MaxFindingMessageLength) + ` bytes) and counts the rest in one EC2G007 finding; a check whose deadline passes
stops between rules with EC2G008.

Region patterns come from the AWS SDK for Go v2's partition metadata (` + "`pkg/ec2/partitions.json`" + `, a verbatim
copy of the SDK's ` + "`internal/endpoints/awsrulesfn/partitions.json`" + `, kept in sync by a test).
`)
	return b.String()
}

func TestCodesDoc(t *testing.T) {
	want := codesMarkdown()
	if *updateDocs {
		if err := os.WriteFile(codesDocPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(codesDocPath)
	if err != nil {
		t.Fatalf("%v (generate it with -update-docs)", err)
	}
	if string(got) != want {
		t.Fatalf("%s is out of date: run go test ./pkg/ec2 -run TestCodesDoc -update-docs", codesDocPath)
	}
}

func TestCodeTable(t *testing.T) {
	re := regexp.MustCompile(`^EC2G\d{3}$`)
	seen := map[Code]bool{}
	for _, c := range Codes() {
		if !re.MatchString(string(c.Code)) || seen[c.Code] {
			t.Errorf("bad or duplicate code %q", c.Code)
		}
		seen[c.Code] = true
		if c.Rule == "" || c.Fix == "" || c.Field == "" || (c.Severity != SeverityError && c.Severity != SeverityWarning) {
			t.Errorf("%s: incomplete documentation %+v", c.Code, c)
		}
	}
	// Every constant declared in codes.go is in the table.
	src, err := os.ReadFile("codes.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`Code = "(EC2G\d{3})"`).FindAllStringSubmatch(string(src), -1) {
		if !seen[Code(m[1])] {
			t.Errorf("code %s is declared but not documented in codeTable", m[1])
		}
	}
	if _, ok := Code("EC2G999").Info(); ok {
		t.Error("unknown code has info")
	}
}
