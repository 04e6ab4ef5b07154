package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

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

// checkUpstreams runs the spec, secret and IAM checks for every EC2 Upstream: the one verdict path
// of `check`, whether the inputs came from files or a cluster.
func checkUpstreams(ctx context.Context, in *inputs, iam *offlineIAM) []verdict {
	out := make([]verdict, 0, len(in.upstreams))
	for _, ui := range in.upstreams {
		u := ui.upstream
		spec := u.Check()
		v := verdict{in: ui, findings: spec}
		if nn, ok := u.SecretName(); ok {
			v.findings = append(v.findings, in.checkSecret(u, nn)...)
		} else if u.Spec.SecretRef == nil {
			v.notes = append(v.notes, "no secretRef: the pod's own AWS identity is used (not checked here)")
		}
		v.iam = iam.evaluate(ctx, u, spec, in.dedicatedAccount(u))
		v.findings = append(v.findings, v.iam.Findings...)
		if v.iam.Note != "" {
			v.notes = append(v.notes, v.iam.Note)
		}
		out = append(out, v)
	}
	return out
}

// dedicatedAccount reports whether the secret u names is among the inputs and states a dedicated
// account (ec2.AnnotationSecretDedicatedAccount), as the webhook reads it.
func (in *inputs) dedicatedAccount(u *ec2.Upstream) bool {
	nn, ok := u.SecretName()
	if !ok {
		return false
	}
	s := in.secrets[nn]
	return s != nil && ec2.SecretDedicatedAccount(s.Annotations)
}

// checkSecret checks the referenced secret as the webhook does. From files, a secret that is not
// among the inputs is a warning; from a cluster, one that does not exist is an error (as the webhook
// has it) and one the user may not read is a warning saying so.
func (in *inputs) checkSecret(u *ec2.Upstream, nn types.NamespacedName) ec2.Findings {
	secret := in.secrets[nn]
	if in.fromCluster && secret == nil {
		if why, unreadable := in.unreadable[nn]; unreadable {
			_, fs := u.CheckSecret(nil, ec2.SeverityWarning)
			if len(fs) == 1 {
				fs[0].Message = codes.SecretNotFound.Message(nn, fmt.Sprintf("could not be read with your kubeconfig (%s), so it was not checked", why), nn.Name, nn.Namespace)
			}
			return fs
		}
		_, fs := u.CheckSecret(nil, ec2.SeverityError)
		return fs
	}
	_, fs := u.CheckSecret(secret, ec2.SeverityWarning)
	if secret != nil {
		// The webhook's opt-in rule, from the webhook's own function.
		if f := admission.SecretNotShared(u, secret.Namespace, secret.Annotations); f != nil {
			fs = append(fs, *f)
		}
	}
	if secret == nil && len(fs) == 1 {
		fs[0].Message = codes.SecretNotFound.Message(nn, "is not among the inputs, so it was not checked", nn.Name, nn.Namespace)
	}
	return fs
}

// ---- output ----

func upstreamName(u *ec2.Upstream) string {
	name := u.Name
	if name == "" {
		name = "(unnamed)"
	}
	return u.Namespace + "/" + name
}

// style colors text when the output is a terminal and NO_COLOR is not set.
type style struct{ on bool }

// newStyle turns colors on only for a terminal, and never when NO_COLOR is set (https://no-color.org).
func newStyle(w io.Writer, getenv func(string) string) style {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return style{}
	}
	f, ok := w.(*os.File)
	return style{on: ok && term.IsTerminal(int(f.Fd()))}
}

func (s style) wrap(code, text string) string {
	if !s.on {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) red(t string) string    { return s.wrap("31", t) }
func (s style) yellow(t string) string { return s.wrap("33", t) }
func (s style) green(t string) string  { return s.wrap("32", t) }
func (s style) bold(t string) string   { return s.wrap("1", t) }
func (s style) dim(t string) string    { return s.wrap("2", t) }

// writeText prints, per Upstream, a header with where it came from, then its problems (code, field,
// message, fix) and notes, then its verdict; a summary closes.
func writeText(w io.Writer, in *inputs, verdicts []verdict, iam *offlineIAM, st style) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for _, s := range in.skipped {
		fmt.Fprintf(bw, "%s: not an EC2 upstream, skipped\n", s)
	}
	accepted, rejected, nerr, nwarn := 0, 0, 0, 0
	for _, v := range verdicts {
		name := upstreamName(v.in.upstream)
		shape := "shape " + v.in.upstream.Shape.String()
		if v.in.upstream.Shape == ec2.ShapeLegacy {
			shape = "legacy " + shape
		}
		fmt.Fprintf(bw, "%s %s\n", st.bold(name), st.dim("("+v.in.at.short()+"; "+shape+")"))
		for _, f := range v.findings {
			label := st.red("error")
			if f.Severity == ec2.SeverityWarning {
				label = st.yellow("warning")
			}
			fmt.Fprintf(bw, "  %s %s %s: %s\n", label, f.Code, f.Field, f.Message)
			if f.Fix != "" {
				fmt.Fprintf(bw, "      fix: %s\n", f.Fix)
			}
		}
		for _, n := range v.notes {
			fmt.Fprintf(bw, "  note: %s\n", n)
		}
		e, wn := v.counts()
		nerr += e
		nwarn += wn
		state := st.green("accepted")
		if !v.allowed() {
			state = st.red("REJECTED")
			rejected++
		} else {
			accepted++
		}
		fmt.Fprintf(bw, "  %s: %s — %s, %s\n\n", name, state, plural(e, "error"), plural(wn, "warning"))
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
	switch {
	case strings.HasSuffix(word, "s"):
		return fmt.Sprintf("%d %ses", n, word)
	case len(word) > 1 && word[len(word)-1] == 'y' && !strings.ContainsRune("aeiou", rune(word[len(word)-2])):
		return fmt.Sprintf("%d %sies", n, word[:len(word)-1])
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// outputOrigin opens each Upstream's entry in the structured (-o json / -o yaml) output of check
// and preview: its name and the file and line it came from (none for an Upstream read from a
// cluster).
type outputOrigin struct {
	Upstream string `json:"upstream"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
}

func (ui upstreamInput) origin() outputOrigin {
	return outputOrigin{Upstream: upstreamName(ui.upstream), File: ui.at.file, Line: ui.at.line}
}

// The structured (-o json / -o yaml) output: {"results": [...]}, one result per EC2 Upstream with the
// file and line it came from (none for an Upstream read from a cluster).
type (
	jsonOutput struct {
		Results []jsonResult `json:"results"`
	}
	jsonResult struct {
		outputOrigin
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

// structuredVerdicts builds the -o json/yaml document: warnings as "CODE field: message; fix: ...",
// errors as objects whose message includes the fix.
func structuredVerdicts(verdicts []verdict) jsonOutput {
	out := jsonOutput{Results: make([]jsonResult, 0, len(verdicts))}
	for _, v := range verdicts {
		r := jsonResult{
			outputOrigin: v.in.origin(),
			Allowed:      v.allowed(),
			Warnings:     []string{},
			Errors:       []jsonError{},
			IAM:          jsonIAM{Decision: v.iam.Decision, Source: v.iam.Source},
			Consistency:  v.iam.Consistency,
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
	return out
}

// writeStructured writes v as indented JSON or as YAML (the same document).
func writeStructured(w io.Writer, format string, v any) error {
	if format == "yaml" {
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
