package policycheck

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceRegexp translates a glob pattern into the anchored regular expression the engine used
// before glob.go (pattern.go's former regexTokens): the reference the fuzz target compares with.
// (?s): a wildcard matches a newline too (IAM has no notion of lines).
func referenceRegexp(mode globMode, pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)")
	if mode == globFold {
		b.WriteString("(?i)")
	}
	b.WriteString("^")
	seps := 0
	for i := 0; i < len(pattern); {
		t := nextToken(pattern, i)
		i += t.w
		restricted := mode == globARN && seps < arnPrefixSegments
		switch {
		case t.kind == '*' && restricted:
			b.WriteString(`[^:]*`)
		case t.kind == '*':
			b.WriteString(`.*`)
		case t.kind == '?' && restricted:
			b.WriteString(`[^:]`)
		case t.kind == '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(t.lit))
			if t.sep {
				seps++
			}
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		mode           globMode
		pattern, value string
		want           bool
	}{
		{globFlat, "", "", true},
		{globFlat, "", "a", false},
		{globFlat, "*", "", true},
		{globFlat, "*", "anything:at/all", true},
		{globFlat, "ec2:describe*", "ec2:describeinstances", true},
		{globFlat, "ec2:describe*", "ec2:startinstances", false},
		{globFlat, "ec2:*instances", "ec2:describeinstances", true},
		{globFlat, "ec2:?tart*", "ec2:startinstances", true},
		{globFlat, "a*b*c", "abxbxc", true},
		{globFlat, "a*b*c", "abxbx", false},
		{globFlat, "*a*a*a*b", strings.Repeat("a", 200), false},
		{globFlat, `\*`, "*", true},
		{globFlat, `\*`, "x", false},
		{globFlat, `a\?`, "a?", true},
		{globFlat, `a\?`, "ab", false},
		{globFlat, `\\`, `\`, true},
		{globFlat, `x\`, `x\`, true}, // a trailing backslash is literal
		{globFlat, "é?", "éü", true},
		{globFlat, "?", "ü", true}, // one character, two bytes
		{globFlat, "a*", "a\nb", true},
		{globFold, "Gloo", "gLOO", true},
		{globFold, "Gloo", "glow", false},
		{globFold, "straße", "STRASSE", false}, // simple folding only, as (?i)
		{globFold, "K", "\u212a", true},        // Kelvin sign folds to K
		{globFlat, "Gloo", "gloo", false},
		// ARN mode: wildcards stay inside the first five segments.
		{globARN, "arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", true},
		{globARN, "arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:111122223333:instance/a:b", true},
		{globARN, "arn:aws:ec2:*:instance/*", "arn:aws:ec2:us-east-1:111122223333:instance/i-1", false},
		{globARN, "arn:aws:*", "arn:aws:ec2:us-east-1:1:instance/i", false},
		{globARN, "arn:aws:s3:::*", "arn:aws:s3:::bucket/key:with:colons", true},
		{globARN, "arn:aws:s3:::b?cket", "arn:aws:s3:::bucket", true},
		{globARN, "arn:?ws:s3:::b", "arn:aws:s3:::b", true},
		{globARN, "arn:?:s3:::b", "arn:aws:s3:::b", false},
		{globARN, "*", "arn:aws:s3:::b", false}, // (the compiler turns a lone "*" into "any")
		// Escaped colons (substituted text) are literal and separate no segment.
		{globARN, `arn\:aws\:iam\:\:1\:role/x*`, "arn:aws:iam::1:role/xyz", true},
		{globARN, `arn\:aws\:iam\:\:1\:role/x*`, "arn:aws:iam::1:role/xy:z", false},
		{globARN, `arn:aws:s3:::${x}*`, "arn:aws:s3:::${x}/a:b", true}, // "$" "{" literal, "*" free
		{globARN, `arn:aws:s3:::\$\{x\}*`, "arn:aws:s3:::${x}/a:b", true},
		{globARN, "arn:aws:s3:::a", "arn:aws:s3::a", false},
		{globARN, "a:b", "a:b:c", false},
	}
	for _, c := range cases {
		if got := globMatch(c.mode, c.pattern, c.value); got != c.want {
			t.Errorf("globMatch(%s, %q, %q) = %v, want %v", c.mode, c.pattern, c.value, got, c.want)
		}
		if utf8.ValidString(c.pattern) && utf8.ValidString(c.value) {
			if ref := referenceRegexp(c.mode, c.pattern).MatchString(c.value); ref != c.want {
				t.Errorf("reference(%s, %q, %q) = %v, want %v", c.mode, c.pattern, c.value, ref, c.want)
			}
		}
	}
}

func TestGlobEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", `a*b?c\d`, "arn:aws:iam::1:user/*", "ü*"} {
		for _, colons := range []bool{false, true} {
			if !globMatch(globFlat, globEscape(s, colons), s) {
				t.Errorf("escaped %q (colons %v) does not match itself", s, colons)
			}
			if s != "" && globMatch(globFlat, globEscape(s, colons), s+"x") {
				t.Errorf("escaped %q matches more than itself", s)
			}
		}
	}
}

// FuzzGlobMatch compares the glob matcher with the regular expression the engine used before
// (referenceRegexp), in all three modes. Corpus: testdata/fuzz/FuzzGlobMatch.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"ec2:describe*", "ec2:describeinstances"},
		{"arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:us-east-1:111122223333:instance/i-1"},
		{`arn\:aws\:iam\:\:1\:role/x*`, "arn:aws:iam::1:role/xyz"},
		{"a*b?c", "aXXbYc"},
		{`\*\?\\`, `*?\`},
		{"*a*a*b", "aaaaaaaaaaaaaaaaaaaab"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if len(pattern) > 256 || len(value) > 256 || !utf8.ValidString(pattern) || !utf8.ValidString(value) {
			return
		}
		for _, mode := range []globMode{globFlat, globARN, globFold} {
			got := globMatch(mode, pattern, value)
			want := referenceRegexp(mode, pattern).MatchString(value)
			if got != want {
				t.Fatalf("globMatch(%s, %q, %q) = %v, the regular expression says %v", mode, pattern, value, got, want)
			}
		}
	})
}

// BenchmarkGlobMatch measures the worst shape for the two-pointer match (a "*" followed by text
// that almost matches everywhere) against the regular expression of the same pattern.
func BenchmarkGlobMatch(b *testing.B) {
	pattern := "*" + strings.Repeat("a", 50) + "b"
	value := strings.Repeat("a", 600)
	b.Run("glob", func(b *testing.B) {
		for b.Loop() {
			globMatch(globFlat, pattern, value)
		}
	})
	b.Run("regexp-compiled-once", func(b *testing.B) {
		re := referenceRegexp(globFlat, pattern)
		for b.Loop() {
			re.MatchString(value)
		}
	})
}
