package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const checkUsage = `Usage: ec2guard check -f FILE [-f FILE...] [--policy FILE...] [-o text|json]

Gives the verdict the admission webhook would give for every EC2 Upstream in the input files,
offline. FILE is a YAML or JSON file with one or more documents (Upstreams, Secrets, Lists of
them; other kinds are ignored with a note), a directory (its *.yaml, *.yml and *.json files), or -
for standard input. A Secret referenced by an Upstream is checked when it is among the inputs;
otherwise that is a warning (EC2G301).

--policy FILE gives an IAM identity policy document (JSON) of the Upstream's principal; every file
given applies to every Upstream. With policies, ec2:DescribeInstances in each Upstream's region is
evaluated by the same engine the webhook uses ("source": "local") and the consistency class is set;
an implicit or explicit deny rejects the Upstream with the statements and the fix. Without --policy,
IAM is reported as not evaluated ("iam": {"decision": "not-evaluated", "source": "none"},
"consistency": "unknown"): nothing is guessed.

Exit codes: 0 every EC2 Upstream accepted, 1 at least one rejected, 2 usage or input error.
Codes: docs/codes.md.

Flags:
`

// Values reported when IAM is not evaluated (no --policy).
const (
	iamNotEvaluated    = "not-evaluated"
	iamSourceNone      = "none"
	consistencyUnknown = "unknown"
)

// checkOptions are the parsed flags.
type checkOptions struct {
	files    []string
	policies []string
	output   string
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// inputError is a problem with the inputs (exit code 2).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func inputErrorf(format string, a ...any) error { return &inputError{fmt.Sprintf(format, a...)} }

// runCheck implements `ec2guard check`; stdin is read for `-f -`.
func runCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, code, ok := parseCheckFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	in, err := readInputs(opts.files, stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard check: %v\n", err)
		return 2
	}
	iam, err := newOfflineIAM(context.Background(), opts.policies)
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard check: %v\n", err)
		return 2
	}
	verdicts := checkUpstreams(context.Background(), in, iam)
	if opts.output == "json" {
		for _, s := range in.skipped {
			fmt.Fprintf(stderr, "ec2guard check: %s: not an EC2 upstream, skipped\n", s)
		}
		if err := writeJSON(stdout, verdicts); err != nil {
			fmt.Fprintf(stderr, "ec2guard check: write output: %v\n", err)
			return 2
		}
	} else {
		writeText(stdout, in, verdicts, iam)
	}
	for _, v := range verdicts {
		if !v.allowed() {
			return 1
		}
	}
	return 0
}

// parseCheckFlags parses the flags; ok is false when the command should exit with code.
func parseCheckFlags(args []string, stdout, stderr io.Writer) (opts checkOptions, code int, ok bool) {
	fs := flag.NewFlagSet("ec2guard check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files, policies listFlag
	fs.Var(&files, "f", "manifest `FILE` (YAML/JSON, multi-document), directory, or - for stdin; repeatable")
	fs.Var(&policies, "policy", "IAM policy document `FILE` (JSON); repeatable")
	output := fs.String("o", "text", "output format: text or json")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), checkUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return opts, 0, false
		}
		return opts, 2, false
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "ec2guard check: unexpected argument %q (give files with -f)\n", fs.Arg(0))
		return opts, 2, false
	case len(files) == 0:
		fmt.Fprintln(stderr, "ec2guard check: at least one -f FILE is required (see ec2guard check -h)")
		return opts, 2, false
	case *output != "text" && *output != "json":
		fmt.Fprintf(stderr, "ec2guard check: -o must be text or json, not %q\n", *output)
		return opts, 2, false
	}
	return checkOptions{files: files, policies: policies, output: *output}, 0, true
}

// ---- reading inputs ----

// location says where a document came from, for messages.
type location struct {
	file  string
	doc   int // 1-based index among the file's non-empty documents
	item  int // 1-based index in a List's items, 0 if not in a list
	line  int // first line of the document
	label string
}

// short renders "file:line" (with the List item), for verdict lines.
func (l location) short() string {
	s := fmt.Sprintf("%s:%d", l.file, l.line)
	if l.item > 0 {
		s += fmt.Sprintf(" item %d", l.item)
	}
	return s
}

func (l location) String() string {
	s := fmt.Sprintf("%s: document %d (line %d)", l.file, l.doc, l.line)
	if l.item > 0 {
		s += fmt.Sprintf(", item %d", l.item)
	}
	return s
}

// upstreamInput is one decoded EC2 Upstream with where it came from.
type upstreamInput struct {
	upstream *ec2.Upstream
	at       location
}

// inputs is everything read from the files.
type inputs struct {
	upstreams []upstreamInput
	secrets   map[types.NamespacedName]*corev1.Secret
	skipped   []string // non-EC2 upstreams, as "ns/name (location)"
}

// readInputs reads every -f argument; notes about ignored documents go to stderr.
func readInputs(files []string, stdin io.Reader, notes io.Writer) (*inputs, error) {
	in := &inputs{secrets: map[types.NamespacedName]*corev1.Secret{}}
	stdinUsed := false
	for _, f := range files {
		paths, err := expandPath(f)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			var data []byte
			if p == "-" {
				if stdinUsed {
					return nil, inputErrorf("-f - given more than once")
				}
				stdinUsed = true
				data, err = io.ReadAll(stdin)
				p = "<stdin>"
			} else {
				data, err = os.ReadFile(p)
			}
			if err != nil {
				return nil, inputErrorf("read %s: %v", p, err)
			}
			if err := in.addFile(p, data, notes); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

// expandPath turns a directory into its manifest files (sorted, not recursive).
func expandPath(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, inputErrorf("read %s: %v", p, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, inputErrorf("read directory %s: %v", p, err)
	}
	var out []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			out = append(out, filepath.Join(p, e.Name()))
		}
	}
	if len(out) == 0 {
		return nil, inputErrorf("directory %s has no *.yaml, *.yml or *.json files", p)
	}
	sort.Strings(out)
	return out, nil
}

// rawDoc is one YAML document of a file and the line it starts on.
type rawDoc struct {
	data []byte
	line int
}

// splitDocuments splits a multi-document YAML stream at `---` lines, like the Kubernetes YAML
// reader, remembering where each document starts. Documents with only comments or blanks are dropped.
func splitDocuments(data []byte) ([]rawDoc, error) {
	var docs []rawDoc
	var cur bytes.Buffer
	start, lineNo := 0, 0
	flush := func() {
		if start > 0 {
			docs = append(docs, rawDoc{data: append([]byte(nil), cur.Bytes()...), line: start})
		}
		cur.Reset()
		start = 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if isDocSeparator(line) {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if t := strings.TrimSpace(line); start == 0 && t != "" && !strings.HasPrefix(t, "#") {
			start = lineNo
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", lineNo+1, err)
	}
	flush()
	return docs, nil
}

func isDocSeparator(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	rest := strings.TrimSpace(line[3:])
	return rest == "" || strings.HasPrefix(rest, "#")
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// absoluteLines rewrites "line N" (relative to a document) into the file's line numbers.
func absoluteLines(msg string, docStart int) string {
	return yamlLineRe.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		return fmt.Sprintf("line %d", n+docStart-1)
	})
}

// addFile parses every document of one file.
func (in *inputs) addFile(name string, data []byte, notes io.Writer) error {
	docs, err := splitDocuments(data)
	if err != nil {
		return inputErrorf("%s: %v", name, err)
	}
	for i, d := range docs {
		loc := location{file: name, doc: i + 1, line: d.line}
		j, err := yaml.YAMLToJSON(d.data)
		if err != nil {
			// YAML errors count lines from the start of the chunk, comments included.
			return inputErrorf("%s: %s", loc, absoluteLines(err.Error(), chunkStart(data, d)))
		}
		var v any
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &v); err != nil {
			return inputErrorf("%s: %v", loc, err)
		}
		if v == nil {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return inputErrorf("%s: not a Kubernetes object (a YAML mapping with apiVersion and kind)", loc)
		}
		if err := in.addObject(obj, loc, notes); err != nil {
			return err
		}
	}
	return nil
}

// chunkStart finds the line where the document's chunk (including leading comments) begins, which is
// what the YAML parser counts from.
func chunkStart(data []byte, d rawDoc) int {
	lines := strings.Split(string(data), "\n")
	start := d.line
	for start > 1 && !isDocSeparator(lines[start-2]) {
		start--
	}
	return start
}

// addObject files one object (or the items of a List) under Upstreams or Secrets.
func (in *inputs) addObject(obj map[string]any, loc location, notes io.Writer) error {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	switch {
	case kind == "" || apiVersion == "":
		fmt.Fprintf(notes, "note: %s: no apiVersion/kind, ignored\n", loc)
		return nil
	case strings.HasSuffix(kind, "List") && obj["items"] != nil:
		items, ok := obj["items"].([]any)
		if !ok {
			return inputErrorf("%s: %s.items is not a list", loc, kind)
		}
		for i, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return inputErrorf("%s, item %d: not an object", loc, i+1)
			}
			itemLoc := loc
			itemLoc.item = i + 1
			if err := in.addObject(m, itemLoc, notes); err != nil {
				return err
			}
		}
		return nil
	case apiVersion == "v1" && kind == "Secret":
		return in.addSecret(obj, loc, notes)
	}
	u, err := ec2.FromObject(obj)
	switch {
	case errors.Is(err, ec2.ErrNotUpstream):
		fmt.Fprintf(notes, "note: %s: %s %s ignored (ec2guard checks Upstreams and Secrets)\n", loc, apiVersion, kind)
		return nil
	case errors.Is(err, ec2.ErrNotEC2):
		in.skipped = append(in.skipped, fmt.Sprintf("%s (%s)", objectKey(obj), loc))
		return nil
	case err != nil:
		return inputErrorf("%s: %v", loc, err)
	}
	if u.Namespace == "" {
		u.Namespace = "default"
		fmt.Fprintf(notes, "note: %s: Upstream %s has no namespace; assuming \"default\"\n", loc, u.Name)
	}
	in.upstreams = append(in.upstreams, upstreamInput{upstream: u, at: loc})
	return nil
}

// objectKey renders an object's "namespace/name" for notes.
func objectKey(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	if ns == "" {
		ns = "default"
	}
	if name == "" {
		name = "(unnamed)"
	}
	return ns + "/" + name
}

// addSecret converts a Secret manifest; a malformed one (e.g. data that is not base64) is an input error.
func (in *inputs) addSecret(obj map[string]any, loc location, notes io.Writer) error {
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &s); err != nil {
		return inputErrorf("%s: Secret %s is malformed: %v", loc, objectKey(obj), err)
	}
	if s.Namespace == "" {
		s.Namespace = "default"
		fmt.Fprintf(notes, "note: %s: Secret %s has no namespace; assuming \"default\"\n", loc, s.Name)
	}
	nn := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	if _, dup := in.secrets[nn]; dup {
		fmt.Fprintf(notes, "note: %s: Secret %s given more than once; the last one is used\n", loc, nn)
	}
	in.secrets[nn] = &s
	return nil
}

// ---- verdicts ----

// verdict is the result for one EC2 Upstream.
type verdict struct {
	in       upstreamInput
	findings ec2.Findings
	notes    []string
	iam      iamResult
}

func (v verdict) allowed() bool { return !v.findings.HasErrors() }

func (v verdict) counts() (errs, warns int) {
	for _, f := range v.findings {
		if f.Severity == ec2.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// checkUpstreams runs the spec, secret and IAM checks for every EC2 Upstream.
func checkUpstreams(ctx context.Context, in *inputs, iam *offlineIAM) []verdict {
	out := make([]verdict, 0, len(in.upstreams))
	for _, ui := range in.upstreams {
		u := ui.upstream
		v := verdict{in: ui, findings: u.Check()}
		if nn, ok := u.SecretName(); ok {
			secret := in.secrets[nn]
			_, fs := u.CheckSecret(secret, ec2.SeverityWarning)
			if secret == nil && len(fs) == 1 {
				fs[0].Message = fmt.Sprintf("secret %s is not among the inputs, so it was not checked", nn)
				fs[0].Fix = fmt.Sprintf("pass its manifest with -f, or make sure it exists (glooctl create secret aws --name %s --namespace %s ...)", nn.Name, nn.Namespace)
			}
			v.findings = append(v.findings, fs...)
		} else if u.Spec.SecretRef == nil {
			v.notes = append(v.notes, "no secretRef: the pod's own AWS identity is used (not checked offline)")
		}
		v.iam = iam.evaluate(ctx, u)
		v.findings = append(v.findings, v.iam.Findings...)
		if v.iam.Note != "" {
			v.notes = append(v.notes, v.iam.Note)
		}
		out = append(out, v)
	}
	return out
}

// ---- output ----

func upstreamName(u *ec2.Upstream) string {
	name := u.Name
	if name == "" {
		name = "(unnamed)"
	}
	return u.Namespace + "/" + name
}

// writeText prints one line per finding, a verdict line per Upstream and a summary.
func writeText(w io.Writer, in *inputs, verdicts []verdict, iam *offlineIAM) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for _, s := range in.skipped {
		fmt.Fprintf(bw, "%s: not an EC2 upstream, skipped\n", s)
	}
	accepted, rejected, nerr, nwarn := 0, 0, 0, 0
	for _, v := range verdicts {
		name := upstreamName(v.in.upstream)
		for _, f := range v.findings {
			sev := ""
			if f.Severity == ec2.SeverityWarning {
				sev = "warning: "
			}
			fmt.Fprintf(bw, "%s: %s %s: %s%s\n", name, f.Code, f.Field, sev, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(bw, "    fix: %s\n", f.Fix)
			}
		}
		for _, n := range v.notes {
			fmt.Fprintf(bw, "%s: note: %s\n", name, n)
		}
		e, wn := v.counts()
		nerr += e
		nwarn += wn
		state := "accepted"
		if !v.allowed() {
			state = "REJECTED"
			rejected++
		} else {
			accepted++
		}
		shape := "shape " + v.in.upstream.Shape.String()
		if v.in.upstream.Shape == ec2.ShapeLegacy {
			shape = "legacy " + shape
		}
		fmt.Fprintf(bw, "%s: %s — %s, %s (%s; %s)\n\n", name, state, plural(e, "error"), plural(wn, "warning"), shape, v.in.at.short())
	}
	summary := fmt.Sprintf("%s checked: %d accepted, %d rejected; %s, %s",
		plural(len(verdicts), "EC2 upstream"), accepted, rejected, plural(nerr, "error"), plural(nwarn, "warning"))
	if len(in.skipped) > 0 {
		summary += fmt.Sprintf("; %s skipped", plural(len(in.skipped), "non-EC2 upstream"))
	}
	if len(verdicts) > 0 {
		summary += "; " + iam.describe()
	}
	fmt.Fprintln(bw, summary)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// The JSON output of SPEC.md.
type (
	jsonOutput struct {
		Results []jsonResult `json:"results"`
	}
	jsonResult struct {
		Upstream    string      `json:"upstream"`
		Allowed     bool        `json:"allowed"`
		Warnings    []string    `json:"warnings"`
		Errors      []jsonError `json:"errors"`
		IAM         jsonIAM     `json:"iam"`
		Consistency string      `json:"consistency"`
	}
	jsonError struct {
		Field   string `json:"field"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	jsonIAM struct {
		Decision string `json:"decision"`
		Source   string `json:"source"`
	}
)

// writeJSON prints {"results": [...]}: warnings as "CODE field: message; fix: ...", errors as objects
// whose message includes the fix.
func writeJSON(w io.Writer, verdicts []verdict) error {
	out := jsonOutput{Results: make([]jsonResult, 0, len(verdicts))}
	for _, v := range verdicts {
		r := jsonResult{
			Upstream:    upstreamName(v.in.upstream),
			Allowed:     v.allowed(),
			Warnings:    []string{},
			Errors:      []jsonError{},
			IAM:         jsonIAM{Decision: v.iam.Decision, Source: v.iam.Source},
			Consistency: v.iam.Consistency,
		}
		for _, f := range v.findings {
			if f.Severity == ec2.SeverityError {
				r.Errors = append(r.Errors, jsonError{Field: f.Field, Code: string(f.Code), Message: f.Text()})
			} else {
				r.Warnings = append(r.Warnings, f.String())
			}
		}
		out.Results = append(out.Results, r)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
