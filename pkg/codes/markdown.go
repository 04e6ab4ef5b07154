package codes

import (
	"fmt"
	"strings"
)

// Markdown renders docs/codes.md from the declaration (go generate ./pkg/codes writes it; a test
// fails when the file is stale).
func Markdown() string {
	var b strings.Builder
	b.WriteString(`# ec2guard codes

Every problem ec2guard reports — a finding of ` + "`ec2guard check`" + `, a denial line or warning of the
admission webhook, a refusal of the discoverer in an Upstream's annotation and report — starts with
one of these codes, followed by the field path where the value was written (` + "`spec.awsEc2...`" + ` or,
for the legacy shape, ` + "`spec.upstreamSpec.awsEc2...`" + `), what is wrong, and how to fix it:

    EC2G101 spec.awsEc2.filters[1]: exactly one of key or kvPair must be set, this filter has neither — write ` + "`- key: K`" + ` ...

Codes are stable: a code is never reused for another rule. The IAM findings that follow an IAM
denial (` + "`RESOURCE_MISMATCH`" + `, ` + "`UNSUPPORTED_CONDITION_KEY`" + `, ` + "`INEFFECTIVE_DENY`" + `, ` + "`REGION_MISMATCH`" + `,
` + "`VARIABLE_IN_OLD_VERSION`" + `) are explained in ` + "`docs/iam-semantics.md`" + `.

This file is generated from the declaration in ` + "`pkg/codes`" + ` (` + "`go generate ./pkg/codes`" + `); the
webhook, the discoverer, the reports and the CLI render their messages from the same declaration.

## Checks and enforcement

The webhook groups the codes into checks; each check has an enforcement action, set with
` + "`--enforce-CHECK=deny|warn|off`" + ` (docs/webhook.md). A ` + "`warning`" + `-severity problem never denies: under
` + "`deny`" + ` it is returned as a warning.

| Check | Default | What it checks | Codes |
| --- | --- | --- | --- |
`)
	cell := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
	for _, ci := range Checks() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", ci.Check, ci.Default, cell(ci.Covers), ci.Check.CodeList())
	}
	b.WriteString(`
The discoverer's codes (EC2G7xx) belong to no webhook check: they are reported in the Upstream's
` + "`ec2guard.io/discovered`" + ` annotation and its report, or logged, and counted in metrics (docs/discoverer.md).

## Codes

Severity is the default: ` + "`error`" + ` rejects the Upstream under its check's default action, ` + "`warning`" + ` is
reported only. EC2G301 (secret not found) is a warning in ` + "`ec2guard check`" + ` when the Secret is not
among the input files or the kubeconfig user may not read it. In the message and fix, ` + "`‹name›`" + ` stands
for what the actual message fills in.

| Code | Severity | Check | Field | Rule | Message | How to fix |
| --- | --- | --- | --- | --- | --- | --- |
`)
	for _, r := range Rules() {
		check := "—"
		if r.Check != "" {
			check = "`" + string(r.Check) + "`"
		}
		msg, fix := r.Placeholders()
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s | %s | %s |\n", r.Code, r.Severity, check, cell(r.Field), cell(r.Rule), cell(msg), cell(fix))
	}
	fmt.Fprintf(&b, `
Filter semantics behind the EC2G1xx rules: all filters must hold (AND); tag keys and values are compared
case-sensitively and exactly, as AWS does; `+"`*`"+` and `+"`?`"+` are literal. These are the semantics of the EC2 API's own tag filters
(`+"`key: K`"+` as `+"`tag-key=K`"+`, `+"`kvPair`"+` as `+"`tag:K=V`"+`, with `+"`*`"+`, `+"`?`"+` and `+"`\\`"+` escaped by `+"`\\`"+` in the filter
values, where EC2 treats them as wildcards): ec2guard lists the running instances and matches them in
memory, and a property test checks the matcher against a reference of EC2's filter evaluation.

Limits. DescribeInstances accepts up to 50 filters and up to 200 values per filter in one request,
and filter strings of up to 255 characters ([Amazon EC2 User Guide, "List and filter using the
command line", Filtering considerations](https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Filtering.html#Filtering_Resources_CLI));
an instance carries at most 50 user tags, keys of at most 128 and values of at most 256 characters
([Tag restrictions](https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions)).
Each Upstream filter is one EC2 filter with one value, so the 50-filter limit is the one an Upstream
can exceed: %s is checked first, and beyond it no other filter rule runs. Every other rule is
linear in the number of filters. One check reports at most %d errors and %d warnings (each
text cut to %d bytes) and counts the rest in one %s finding; a check whose deadline passes
stops between rules with %s.

Region patterns come from the AWS SDK for Go v2's partition metadata (`+"`pkg/ec2/partitions.json`"+`, a verbatim
copy of the SDK's `+"`internal/endpoints/awsrulesfn/partitions.json`"+`, kept in sync by a test).
`, TooManyFilters, MaxReportedErrors, MaxReportedWarnings, MaxFindingMessageLength, MoreFindings, CheckInterrupted)
	return b.String()
}

// Placeholders renders the rule's message and fix with each argument shown as ‹name›.
func (r Rule) Placeholders() (message, fix string) {
	args := make([]any, len(r.Args))
	for i, n := range r.Args {
		args[i] = "‹" + n + "›"
	}
	return render(r.Message, args), render(r.Fix, args)
}
