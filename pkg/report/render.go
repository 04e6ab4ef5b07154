package report

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	openreports "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
)

// Output formats of Render.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats lists the output formats.
func Formats() []string { return []string{FormatTable, FormatJSON, FormatMarkdown, FormatHTML} }

// Render writes reports in format: table (aligned text, one row per Upstream, then one row per
// result that is not pass), json (a v1 List of the Reports, readable again by `ec2guard report
// -f`), markdown, or html (one self-contained page, everything escaped).
func Render(w io.Writer, format string, reports []Report) error {
	switch format {
	case FormatTable:
		return renderTable(w, reports)
	case FormatJSON:
		return renderJSON(w, reports)
	case FormatMarkdown:
		return renderMarkdown(w, reports)
	case FormatHTML:
		return renderHTML(w, reports)
	}
	return fmt.Errorf("output format %q: must be one of %s", format, strings.Join(Formats(), ", "))
}

// Failing reports whether any result of any report is fail or error.
func Failing(reports []Report) bool {
	for i := range reports {
		for _, r := range reports[i].Results {
			if r.Result == Fail || r.Result == Error {
				return true
			}
		}
	}
	return false
}

// Sort orders reports by namespace and Upstream.
func Sort(reports []Report) {
	slices.SortStableFunc(reports, func(a, b Report) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(Upstream(&a), Upstream(&b))
	})
}

// Upstream returns the name of the report's Upstream: its scope, else its label, else the
// report's own name.
func Upstream(r *Report) string {
	switch {
	case r.Scope != nil && r.Scope.Name != "":
		return r.Scope.Name
	case r.Labels[LabelUpstream] != "":
		return r.Labels[LabelUpstream]
	}
	return r.Name
}

// Properties merges the properties of a report's results (the first result that sets a key wins).
func Properties(r *Report) map[string]string {
	out := map[string]string{}
	for _, res := range r.Results {
		for k, v := range res.Properties {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}

// view is a report prepared for the text templates.
type view struct {
	Namespace, Upstream, Region, Principal, Filters, Consistency, Matched, IAMSource string
	Summary                                                                          openreports.ReportSummary
	Results                                                                          []openreports.ReportResult
	Worst                                                                            string
}

func views(reports []Report) []view {
	out := make([]view, 0, len(reports))
	for i := range reports {
		r := &reports[i]
		p := Properties(r)
		out = append(out, view{
			Namespace: r.Namespace, Upstream: Upstream(r), Region: p[PropRegion], Principal: p[PropPrincipal],
			Filters: p[PropFilters], Consistency: p[PropConsistency], Matched: p[PropMatched], IAMSource: p[PropIAMSource],
			Summary: r.Summary, Results: r.Results, Worst: string(worst(r.Results)),
		})
	}
	return out
}

// worst is the most severe result: error, fail, warn, pass (skip otherwise).
func worst(results []openreports.ReportResult) openreports.Result {
	rank := map[openreports.Result]int{Pass: 1, Warn: 2, Fail: 3, Error: 4}
	w := openreports.Result("skip")
	for _, r := range results {
		if rank[r.Result] > rank[w] {
			w = r.Result
		}
	}
	return w
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func renderTable(w io.Writer, reports []Report) error {
	vs := views(reports)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tUPSTREAM\tREGION\tCONSISTENCY\tMATCHED\tPASS\tWARN\tFAIL\tERROR\tRESULT")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", v.Namespace, v.Upstream, dash(v.Region), dash(v.Consistency),
			dash(v.Matched), v.Summary.Pass, v.Summary.Warn, v.Summary.Fail, v.Summary.Error, v.Worst)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	header := false
	for _, v := range vs {
		for _, r := range v.Results {
			if r.Result == Pass {
				continue
			}
			if !header {
				fmt.Fprintln(tw, "\nUPSTREAM\tCHECK\tRESULT\tMESSAGE")
				header = true
			}
			fmt.Fprintf(tw, "%s/%s\t%s\t%s\t%s\n", v.Namespace, v.Upstream, r.Policy, r.Result, oneLine(r.Description))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func renderJSON(w io.Writer, reports []Report) error {
	items := reports
	if items == nil {
		items = []Report{}
	}
	b, err := json.MarshalIndent(map[string]any{"apiVersion": "v1", "kind": "List", "items": items}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode reports: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write reports: %w", err)
	}
	return nil
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	s = oneLine(s)
	r := strings.NewReplacer(`\`, `\\`, "|", `\|`, "<", "&lt;", ">", "&gt;", "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`)
	return r.Replace(s)
}

func renderMarkdown(w io.Writer, reports []Report) error {
	var b strings.Builder
	b.WriteString("# ec2guard consistency reports\n\n")
	b.WriteString("| Namespace | Upstream | Region | Consistency | Matched | Pass | Warn | Fail | Error | Result |\n")
	b.WriteString("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |\n")
	vs := views(reports)
	for _, v := range vs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %d | %d | %d | %s |\n", mdCell(v.Namespace), mdCell(v.Upstream),
			mdCell(dash(v.Region)), mdCell(dash(v.Consistency)), mdCell(dash(v.Matched)),
			v.Summary.Pass, v.Summary.Warn, v.Summary.Fail, v.Summary.Error, v.Worst)
	}
	for _, v := range vs {
		fmt.Fprintf(&b, "\n## %s/%s\n\n", mdCell(v.Namespace), mdCell(v.Upstream))
		fmt.Fprintf(&b, "- Region: %s\n- Principal: %s\n- Filters: %s\n- Matched instances: %s\n- Consistency: %s\n- IAM source: %s\n\n",
			mdCell(dash(v.Region)), mdCell(dash(v.Principal)), mdCell(dash(v.Filters)), mdCell(dash(v.Matched)),
			mdCell(dash(v.Consistency)), mdCell(dash(v.IAMSource)))
		b.WriteString("| Check | Result | Message |\n| --- | --- | --- |\n")
		for _, r := range v.Results {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(r.Policy), mdCell(string(r.Result)), mdCell(r.Description))
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

var htmlPage = template.Must(template.New("page").Funcs(template.FuncMap{"dash": dash, "itoa": strconv.Itoa}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ec2guard consistency reports</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
.pass{color:#11703a}.warn{color:#9a6700}.fail,.error{color:#b42318;font-weight:bold}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dt{font-weight:bold}dd{margin:0}
</style>
</head>
<body>
<h1>ec2guard consistency reports</h1>
<table>
<tr><th>Namespace</th><th>Upstream</th><th>Region</th><th>Consistency</th><th>Matched</th><th>Pass</th><th>Warn</th><th>Fail</th><th>Error</th><th>Result</th></tr>
{{- range .}}
<tr><td>{{.Namespace}}</td><td><a href="#{{.Namespace}}/{{.Upstream}}">{{.Upstream}}</a></td><td>{{dash .Region}}</td><td>{{dash .Consistency}}</td><td>{{dash .Matched}}</td><td>{{.Summary.Pass}}</td><td>{{.Summary.Warn}}</td><td>{{.Summary.Fail}}</td><td>{{.Summary.Error}}</td><td class="{{.Worst}}">{{.Worst}}</td></tr>
{{- end}}
</table>
{{- range .}}
<h2 id="{{.Namespace}}/{{.Upstream}}">{{.Namespace}}/{{.Upstream}}</h2>
<dl>
<dt>Region</dt><dd>{{dash .Region}}</dd>
<dt>Principal</dt><dd>{{dash .Principal}}</dd>
<dt>Filters</dt><dd>{{dash .Filters}}</dd>
<dt>Matched instances</dt><dd>{{dash .Matched}}</dd>
<dt>Consistency</dt><dd>{{dash .Consistency}}</dd>
<dt>IAM source</dt><dd>{{dash .IAMSource}}</dd>
</dl>
<table>
<tr><th>Check</th><th>Result</th><th>Message</th></tr>
{{- range .Results}}
<tr><td>{{.Policy}}</td><td class="{{.Result}}">{{.Result}}</td><td>{{.Description}}</td></tr>
{{- end}}
</table>
{{- end}}
</body>
</html>
`))

func renderHTML(w io.Writer, reports []Report) error {
	if err := htmlPage.Execute(w, views(reports)); err != nil {
		return fmt.Errorf("write html: %w", err)
	}
	return nil
}
