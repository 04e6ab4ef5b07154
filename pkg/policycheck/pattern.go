package policycheck

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// This file compiles the strings of a policy (actions, resource ARNs, condition values) into a form
// the Rego evaluates quickly. It only translates syntax — which characters are wildcards and where a
// `${...}` variable starts — and never decides whether a request matches: that happens in Rego.
//
// A matcher (regoMatcher, input.go) has one literal reading:
//
//	{"any": true}                    the pattern "*" (matches everything)
//	{"exact": "..."}                 no wildcards: compared for equality
//	{"prefix": "..."}                one trailing "*": a prefix test
//	{"glob": "...", "mode": mode}    anything else: a glob pattern matched by ec2guard.glob_match
//
// plus, when the text contains a policy variable, its variable reading under "tokens" (with the
// mode under "mode"): a list of tokens ["l", glob text] | ["v", lower-case key, default-or-null] from which
// the Rego assembles the glob pattern once the variables are substituted (the substituted text
// escaped, see globEscape). The Rego chooses the reading from the policy's Version (variables work
// only under 2012-10-17). No pattern ever becomes a regular expression.

// patternMode says how wildcards behave in a string.
type patternMode int

const (
	// modeFlat: "*" and "?" are wildcards over the whole string (StringLike).
	modeFlat patternMode = iota
	// modeSegmented: ARN matching; "*"/"?" stay inside one of the first five colon-separated
	// segments, and match freely in the resource part (Resource element, ArnLike).
	modeSegmented
	// modeLiteral: no wildcards (StringEquals); variables still apply.
	modeLiteral
)

type patternOpts struct {
	mode patternMode
	// lower folds the pattern to lower case (actions).
	lower bool
	// ci makes the match case-insensitive (StringEqualsIgnoreCase).
	ci bool
	// anyStar turns the exact pattern "*" into {"any": true}.
	anyStar bool
}

// globMode returns the mode ec2guard.glob_match uses for patterns compiled with o.
func (o patternOpts) globMode() globMode {
	switch {
	case o.ci:
		return globFold
	case o.mode == modeSegmented:
		return globARN
	default:
		return globFlat
	}
}

// hasVariableSyntax reports whether s contains a `${...}` token the way IAM (and iam-simulate)
// tokenizes them: up to the first "}".
func hasVariableSyntax(s string) bool {
	i := strings.Index(s, "${")
	return i >= 0 && strings.Contains(s[i+2:], "}")
}

type token struct {
	kind string // "l" literal text, "*" or "?" wildcard, "v" variable
	text string // literal text, or variable name for "v"
	def  *string
}

// tokenize splits s into literal text, wildcards and (when vars is true) variables.
func tokenize(s string, vars, wildcards bool) []token {
	var out []token
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, token{kind: "l", text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case wildcards && (c == '*' || c == '?'):
			flush()
			out = append(out, token{kind: string(c)})
			i++
		case vars && c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				lit.WriteByte(c)
				i++
				continue
			}
			inner := s[i+2 : i+2+end]
			i += end + 3
			switch inner {
			case "*", "?", "$":
				lit.WriteString(inner)
				continue
			}
			flush()
			t := token{kind: "v"}
			parts := strings.Split(inner, ", ")
			if len(parts) == 2 && len(parts[1]) >= 2 && strings.HasPrefix(parts[1], "'") && strings.HasSuffix(parts[1], "'") {
				d := parts[1][1 : len(parts[1])-1]
				t.def = &d
			}
			t.text = strings.ToLower(strings.TrimSpace(parts[0]))
			out = append(out, t)
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	return out
}

// globText renders tokens without variables as a glob pattern: literal text escaped, wildcards as
// themselves (ARN segment separators stay unescaped colons).
func globText(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case "l":
			b.WriteString(globEscape(t.text, false))
		case "*", "?":
			b.WriteString(t.kind)
		}
	}
	return b.String()
}

// globTokens turns tokens into the variable reading: runs of literal text and wildcards become one
// ["l", glob text] token, variables ["v", key, default] for the Rego to substitute.
func globTokens(toks []token) []any {
	var out []any
	var run []token
	flush := func() {
		if len(run) > 0 {
			out = append(out, []any{"l", globText(run)})
			run = run[:0]
		}
	}
	for _, t := range toks {
		if t.kind != "v" {
			run = append(run, t)
			continue
		}
		flush()
		var def any
		if t.def != nil {
			def = *t.def
		}
		out = append(out, []any{"v", t.text, def})
	}
	flush()
	return out
}

// compileMatcher builds the matcher for one policy string.
func compileMatcher(raw string, o patternOpts) regoMatcher {
	s := raw
	if o.lower {
		s = strings.ToLower(raw)
	}
	var m regoMatcher
	wild := o.mode != modeLiteral
	if o.anyStar && s == "*" {
		m.Any = true
	} else {
		m = literalReading(s, tokenize(s, false, wild), o)
	}
	if hasVariableSyntax(s) {
		m.Tokens = globTokens(tokenize(s, true, wild))
		m.Mode = string(o.globMode())
	}
	return m
}

func literalReading(s string, toks []token, o patternOpts) regoMatcher {
	nWild := 0
	for _, t := range toks {
		if t.kind != "l" {
			nWild++
		}
	}
	if !o.ci {
		if nWild == 0 {
			return regoMatcher{Exact: &s}
		}
		last := toks[len(toks)-1]
		if nWild == 1 && last.kind == "*" {
			prefix := s[:len(s)-1]
			if o.mode != modeSegmented || strings.Count(prefix, ":") >= 5 {
				return regoMatcher{Prefix: &prefix}
			}
		}
	}
	g := globText(toks)
	return regoMatcher{Glob: &g, Mode: string(o.globMode())}
}

// Typed condition values. The Rego compares request values against these.

var numberRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

func numericValue(raw string) regoMatcher {
	m := regoMatcher{Text: &raw}
	if numberRE.MatchString(raw) {
		if f, err := strconv.ParseFloat(raw, 64); err == nil {
			m.Number = f
		}
	}
	return m
}

var epochRE = regexp.MustCompile(`^-?[0-9]+$`)

// parseDateNanos parses the date forms IAM accepts in policies: epoch seconds, RFC 3339 date-times
// and plain dates. It mirrors parse_date in the Rego (used for request values).
func parseDateNanos(raw string) (int64, bool) {
	if epochRE.MatchString(raw) {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n > 9_000_000_000 || n < -9_000_000_000 {
			return 0, false
		}
		return n * int64(time.Second), true
	}
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return t.UnixNano(), true
	}
	if t, err := time.Parse("2006-01-02", raw); err == nil {
		return t.UnixNano(), true
	}
	return 0, false
}

func dateValue(raw string) regoMatcher {
	m := regoMatcher{Text: &raw}
	if n, ok := parseDateNanos(raw); ok {
		m.Number = n
	}
	return m
}

func ipValue(raw string) regoMatcher {
	m := regoMatcher{Text: &raw}
	if strings.Contains(raw, "/") {
		if _, _, err := net.ParseCIDR(raw); err == nil {
			m.CIDR = raw
		}
		return m
	}
	if ip := net.ParseIP(raw); ip != nil {
		if ip.To4() != nil && !strings.Contains(raw, ":") {
			m.CIDR = raw + "/32"
		} else {
			m.CIDR = raw + "/128"
		}
	}
	return m
}

// conditionValue compiles one condition value for its operator family.
func conditionValue(base, raw string) regoMatcher {
	switch base {
	case "StringEquals", "StringNotEquals":
		return compileMatcher(raw, patternOpts{mode: modeLiteral})
	case "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase":
		return compileMatcher(raw, patternOpts{mode: modeLiteral, ci: true})
	case "StringLike", "StringNotLike":
		return compileMatcher(raw, patternOpts{mode: modeFlat, anyStar: true})
	case "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike":
		return compileMatcher(raw, patternOpts{mode: modeSegmented})
	case "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
		"NumericGreaterThan", "NumericGreaterThanEquals":
		return numericValue(raw)
	case "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan",
		"DateGreaterThanEquals":
		return dateValue(raw)
	case "IpAddress", "NotIpAddress":
		return ipValue(raw)
	case "Bool", "Null":
		lower := strings.ToLower(raw)
		return regoMatcher{Text: &lower}
	default: // BinaryEquals
		return regoMatcher{Text: &raw}
	}
}
