package ec2

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"pgregory.net/rapid"
)

// ---- reference implementation of EC2's filter semantics (independent of Matcher) ----

type patTok struct {
	kind byte // 'l' literal, '*' any sequence, '?' any one character
	r    rune
}

// ec2Pattern tokenises an EC2 filter value: `*` any sequence, `?` any single character, `\` makes
// the next character literal (a trailing `\` is literal).
func ec2Pattern(p string) []patTok {
	var toks []patTok
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '\\':
			if i+1 < len(rs) {
				i++
			}
			toks = append(toks, patTok{'l', rs[i]})
		case '*':
			toks = append(toks, patTok{'*', 0})
		case '?':
			toks = append(toks, patTok{'?', 0})
		default:
			toks = append(toks, patTok{'l', rs[i]})
		}
	}
	return toks
}

// ec2PatternMatch matches s against an EC2 filter-value pattern by dynamic programming over runes.
func ec2PatternMatch(pattern, s string) bool {
	toks := ec2Pattern(pattern)
	rs := []rune(s)
	// dp[j]: tokens[:i] match rs[:j]
	dp := make([]bool, len(rs)+1)
	dp[0] = true
	for _, t := range toks {
		next := make([]bool, len(rs)+1)
		for j := 0; j <= len(rs); j++ {
			switch t.kind {
			case '*':
				next[j] = dp[j] || (j > 0 && next[j-1])
			case '?':
				next[j] = j > 0 && dp[j-1]
			default:
				next[j] = j > 0 && dp[j-1] && rs[j-1] == t.r
			}
		}
		dp = next
	}
	return dp[len(rs)]
}

// refEC2Eval evaluates DescribeInstances filters against one running instance's tags, as EC2
// documents them: filters ANDed, values within a filter ORed, tag:K names the key exactly.
func refEC2Eval(t interface{ Fatalf(string, ...any) }, filters []ec2types.Filter, tags map[string]string) bool {
	for _, f := range filters {
		name := aws.ToString(f.Name)
		anyValue := func(s string) bool {
			for _, v := range f.Values {
				if ec2PatternMatch(v, s) {
					return true
				}
			}
			return false
		}
		ok := false
		switch {
		case name == "instance-state-name":
			ok = anyValue("running")
		case name == "tag-key":
			for k := range tags {
				if anyValue(k) {
					ok = true
					break
				}
			}
		case strings.HasPrefix(name, "tag:"):
			v, exists := tags[strings.TrimPrefix(name, "tag:")]
			ok = exists && anyValue(v)
		default:
			t.Fatalf("unexpected filter name %q", name)
		}
		if !ok {
			return false
		}
	}
	return true
}

// ---- generators ----

// tagString draws short strings over an alphabet rich in EC2 wildcard characters.
func tagString() *rapid.Generator[string] {
	return rapid.Custom(func(t *rapid.T) string {
		alphabet := []rune{'a', 'b', 'A', 'B', '*', '?', '\\', 'é', 'É', ' ', ':'}
		n := rapid.IntRange(0, 4).Draw(t, "len")
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteRune(rapid.SampledFrom(alphabet).Draw(t, "rune"))
		}
		return b.String()
	})
}

func tagSet() *rapid.Generator[map[string]string] {
	return rapid.MapOfN(tagString(), tagString(), 0, 5)
}

// filtersFor draws filters that often refer to the instance's tags (or wildcard-looking variants of
// them), so that matches and near-misses are both common.
func filtersFor(t *rapid.T, tags map[string]string) []Filter {
	var keys []string
	for k := range tags {
		keys = append(keys, k)
	}
	pick := func(label string) string {
		if len(keys) > 0 && rapid.Bool().Draw(t, label+"-fromTags") {
			return rapid.SampledFrom(keys).Draw(t, label+"-key")
		}
		return tagString().Draw(t, label+"-random")
	}
	n := rapid.IntRange(0, 4).Draw(t, "nfilters")
	out := make([]Filter, 0, n)
	for i := 0; i < n; i++ {
		k := pick("key")
		if rapid.Bool().Draw(t, "isKey") {
			out = append(out, KeyFilter(k))
			continue
		}
		var v string
		switch rapid.IntRange(0, 3).Draw(t, "valueKind") {
		case 0:
			v = tags[k]
		case 1:
			v = wildcardVariant(tags[k], rapid.IntRange(0, 8).Draw(t, "pos"))
		default:
			v = tagString().Draw(t, "value")
		}
		out = append(out, KVFilter(k, v))
	}
	return out
}

// wildcardVariant replaces one character of s with '*' or '?', or appends '*': patterns that would
// match s if they were not escaped.
func wildcardVariant(s string, pos int) string {
	rs := []rune(s)
	switch {
	case len(rs) == 0:
		return "*"
	case pos%3 == 0:
		return s + "*"
	case pos%3 == 1:
		rs[pos%len(rs)] = '?'
	default:
		rs[pos%len(rs)] = '*'
	}
	return string(rs)
}

// ---- properties ----

func TestPropertyMatcherAgreesWithEC2Filters(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tags := tagSet().Draw(t, "tags")
		filters := filtersFor(t, tags)
		m, err := NewMatcher(filters)
		if err != nil {
			t.Fatal(err)
		}
		api, err := EC2Filters(filters)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Match(tags), refEC2Eval(t, api, tags); got != want {
			t.Fatalf("Matcher.Match = %v, EC2 reference = %v\nfilters %v\nEC2 filters %s\ntags %q", got, want, filters, showFilters(api), tags)
		}
	})
}

func TestPropertyEscapeMatchesOnlyItself(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := tagString().Draw(t, "s")
		other := rapid.OneOf(tagString(), rapid.Just(s), rapid.Just(wildcardVariant(s, 1))).Draw(t, "other")
		if got := ec2PatternMatch(EscapeFilterValue(s), other); got != (s == other) {
			t.Fatalf("pattern %q vs %q: match = %v", EscapeFilterValue(s), other, got)
		}
	})
}

// glooMayMatch is Gloo's own EC2 plugin over every order of the instance's tag list: it lowercases
// the tag keys into a map (of keys that differ only in case, the last in the list wins) and looks
// the lowercased filters up in it, values compared exactly.
func glooMayMatch(filters []Filter, tags map[string]string) bool {
	var lf []Filter
	for _, f := range filters {
		if f.IsKV() {
			lf = append(lf, KVFilter(strings.ToLower(f.KVPair.Key), f.KVPair.Value))
		} else {
			lf = append(lf, KeyFilter(strings.ToLower(*f.Key)))
		}
	}
	gloo, _ := NewMatcher(lf)
	keys := slices.Sorted(maps.Keys(tags))
	var try func(order []string, rest []string) bool
	try = func(order, rest []string) bool {
		if len(rest) == 0 {
			lowered := map[string]string{}
			for _, k := range order {
				lowered[strings.ToLower(k)] = tags[k]
			}
			return gloo.Match(lowered)
		}
		for i := range rest {
			next := append(slices.Clone(rest[:i]), rest[i+1:]...)
			if try(append(order, rest[i]), next) {
				return true
			}
		}
		return false
	}
	return try(nil, keys)
}

func TestPropertyLowercasedKeysLikeGloo(t *testing.T) {
	// Tag keys that collide once lowercased (`Env` and `env` are two tags in EC2) are part of the
	// generated cases, not skipped: there Gloo keeps one of them, depending on the order of the
	// instance's tag list.
	collided := 0
	rapid.Check(t, func(t *rapid.T) {
		tags := tagSet().Draw(t, "tags")
		if len(tags) > 0 && rapid.Bool().Draw(t, "collide") {
			// Add a tag whose key differs from an existing one only in case.
			k := rapid.SampledFrom(slices.Sorted(maps.Keys(tags))).Draw(t, "variantOf")
			if v := swapCase(k); v != k {
				tags[v] = tagString().Draw(t, "variantValue")
			}
		}
		lowered := map[string]bool{}
		for k := range tags {
			if lowered[strings.ToLower(k)] {
				collided++
				break
			}
			lowered[strings.ToLower(k)] = true
		}
		filters := filtersFor(t, tags)
		m, _ := NewMatcher(filters)
		if got, want := m.MatchLowercasedKeys(tags), glooMayMatch(filters, tags); got != want {
			t.Fatalf("MatchLowercasedKeys = %v, Gloo over every tag order = %v\nfilters %v\ntags %q", got, want, filters, tags)
		}
	})
	if collided == 0 {
		t.Error("no generated tag set had keys that collide when lowercased")
	}
}

// swapCase turns upper-case letters into lower case and the other way round.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		if l := unicode.ToLower(r); l != r {
			return l
		}
		return unicode.ToUpper(r)
	}, s)
}

func TestLowercasedKeysCollidingTags(t *testing.T) {
	// EC2 tag keys are case-sensitive: Name and name are two tags.
	tags := map[string]string{"Name": "web", "name": "db", "Env": "prod"}
	cases := []struct {
		filters       []Filter
		exact, lowerd bool
	}{
		{[]Filter{KVFilter("Name", "web")}, true, true},
		{[]Filter{KVFilter("name", "db")}, true, true},
		{[]Filter{KVFilter("NAME", "db")}, false, true}, // Gloo selects it when name comes last
		{[]Filter{KVFilter("name", "web")}, false, true},
		{[]Filter{KVFilter("name", "api")}, false, false},
		// Both tags required exactly: AWS selects it, Gloo (one value per lowercased key) cannot.
		{[]Filter{KVFilter("Name", "web"), KVFilter("name", "db")}, true, false},
		{[]Filter{KeyFilter("NAME"), KVFilter("env", "prod")}, false, true},
	}
	for _, tc := range cases {
		m, err := NewMatcher(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(tags); got != tc.exact {
			t.Errorf("%v: Match = %v", tc.filters, got)
		}
		if got := m.MatchLowercasedKeys(tags); got != tc.lowerd {
			t.Errorf("%v: MatchLowercasedKeys = %v", tc.filters, got)
		}
		if got := glooMayMatch(tc.filters, tags); got != tc.lowerd {
			t.Errorf("%v: reference = %v (the case table is wrong)", tc.filters, got)
		}
	}
}

func TestPropertyEqualLower(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.String().Draw(t, "a")
		b := rapid.OneOf(rapid.String(), rapid.Just(strings.ToUpper(a)), rapid.Just(strings.ToLower(a))).Draw(t, "b")
		if got, want := equalLower(a, b), strings.ToLower(a) == strings.ToLower(b); got != want {
			t.Fatalf("equalLower(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}

func FuzzEqualLower(f *testing.F) {
	f.Add("Env", "env")
	f.Add("K\xff", "k\xef\xbf\xbd")
	f.Add("\u212a", "k") // Kelvin sign lowercases to k
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := equalLower(a, b), strings.ToLower(a) == strings.ToLower(b); got != want {
			t.Fatalf("equalLower(%q, %q) = %v, want %v", a, b, got, want)
		}
	})
}

func showFilters(fs []ec2types.Filter) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s=%q", aws.ToString(f.Name), f.Values))
	}
	return strings.Join(parts, " ")
}

// ---- examples and edge cases ----

func TestEscapeIsNecessary(t *testing.T) {
	// The reference is sensitive to escaping: an unescaped "*" would match any value.
	if !ec2PatternMatch("*", "x") || ec2PatternMatch(EscapeFilterValue("*"), "x") {
		t.Fatal("reference pattern matcher ignores wildcards or escaping")
	}
	if got := EscapeFilterValue(`a*b?c\d`); got != `a\*b\?c\\d` {
		t.Errorf("EscapeFilterValue = %q", got)
	}
}

func TestEC2Filters(t *testing.T) {
	got, err := EC2Filters([]Filter{KeyFilter("gloo-id"), KVFilter("gloo-tag", "group*1"), KeyFilter("a?"), KeyFilter("gloo-id")})
	if err != nil {
		t.Fatal(err)
	}
	want := `instance-state-name=["running"] tag-key=["gloo-id"] tag:gloo-tag=["group\\*1"] tag-key=["a\\?"]`
	if s := showFilters(got); s != want {
		t.Errorf("EC2Filters = %s\nwant          %s", s, want)
	}
	if _, err := EC2Filters([]Filter{{}}); err == nil || !strings.Contains(err.Error(), "EC2G101") {
		t.Errorf("malformed filter: err = %v", err)
	}
	none, _ := EC2Filters(nil)
	if s := showFilters(none); s != `instance-state-name=["running"]` {
		t.Errorf("no filters = %s", s)
	}
}

// matchKind tells an exact match from one that only Gloo's lowercased keys would produce: the
// classification the discoverer's report makes (pkg/discovery's Index.Select).
type matchKind int

const (
	noMatch matchKind = iota
	exactMatch
	matchOnlyLowercasedKeys
)

func classify(m *Matcher, tags map[string]string) matchKind {
	switch {
	case m.Match(tags):
		return exactMatch
	case m.MatchLowercasedKeys(tags):
		return matchOnlyLowercasedKeys
	}
	return noMatch
}

func TestMatcher(t *testing.T) {
	tags := map[string]string{"gloo-id": "1", "gloo-tag": "group1", "version": "v1.2.3", "Env": "prod", "star": "*"}
	cases := []struct {
		filters []Filter
		match   bool
		kind    matchKind
	}{
		{nil, true, exactMatch},
		{[]Filter{KeyFilter("gloo-id"), KVFilter("gloo-tag", "group1"), KVFilter("version", "v1.2.3")}, true, exactMatch},
		{[]Filter{KVFilter("gloo-tag", "group*")}, false, noMatch},
		{[]Filter{KVFilter("star", "*")}, true, exactMatch},
		{[]Filter{KVFilter("gloo-tag", "Group1")}, false, noMatch},
		{[]Filter{KeyFilter("env")}, false, matchOnlyLowercasedKeys},
		{[]Filter{KVFilter("ENV", "prod")}, false, matchOnlyLowercasedKeys},
		{[]Filter{KVFilter("ENV", "PROD")}, false, noMatch},
		{[]Filter{KeyFilter("missing")}, false, noMatch},
		{[]Filter{KVFilter("Env", "prod"), KVFilter("Env", "dev")}, false, noMatch},
	}
	for _, tc := range cases {
		m, err := NewMatcher(tc.filters)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Match(tags); got != tc.match {
			t.Errorf("%v: Match = %v", tc.filters, got)
		}
		if got := classify(m, tags); got != tc.kind {
			t.Errorf("%v: Classify = %v, want %v", tc.filters, got, tc.kind)
		}
	}
	conflict, _ := NewMatcher([]Filter{KVFilter("a", "1"), KVFilter("a", "2")})
	if !conflict.SelectsNothing() || conflict.SelectsEverything() {
		t.Error("conflicting matcher should select nothing")
	}
	all, _ := NewMatcher(nil)
	if !all.SelectsEverything() || !all.Match(nil) {
		t.Error("empty matcher should select everything")
	}
	if _, err := NewMatcher([]Filter{{Key: aws.String("a"), KVPair: &KVPair{Key: "a"}}}); err == nil {
		t.Error("malformed filter compiled")
	}
}

func TestMatcherDoesNotAllocate(t *testing.T) {
	m, _ := NewMatcher([]Filter{KeyFilter("gloo-id"), KVFilter("gloo-tag", "group1"), KVFilter("version", "v1.2.3")})
	tags := map[string]string{"gloo-id": "1", "gloo-tag": "group1", "version": "v1.2.3", "Name": "web-1"}
	if n := testing.AllocsPerRun(100, func() { m.Match(tags) }); n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.MatchLowercasedKeys(tags) }); n != 0 {
		t.Errorf("MatchLowercasedKeys allocates %v times per call", n)
	}
}

func BenchmarkMatcher(b *testing.B) {
	// 100,000 instances with 8 tags each, one Upstream with three filters.
	instances := make([]map[string]string, 100_000)
	for i := range instances {
		instances[i] = map[string]string{
			"Name": fmt.Sprintf("web-%d", i), "gloo-id": fmt.Sprint(i), "gloo-tag": fmt.Sprintf("group%d", i%10),
			"version": "v1.2.3", "team": "a", "env": "prod", "az": "us-east-1a", "owner": "x",
		}
	}
	m, _ := NewMatcher([]Filter{KeyFilter("gloo-id"), KVFilter("gloo-tag", "group1"), KVFilter("version", "v1.2.3")})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, tags := range instances {
			if m.Match(tags) {
				n++
			}
		}
		if n != 10_000 {
			b.Fatalf("matched %d", n)
		}
	}
}

func TestEC2PatternReference(t *testing.T) {
	// Sanity of the reference itself, from the EC2 documentation's example: \*amazon\?\\ is the
	// literal *amazon?\ .
	cases := []struct {
		p, s string
		want bool
	}{
		{`\*amazon\?\\`, `*amazon?\`, true},
		{`\*amazon\?\\`, `xamazon?\`, false},
		{`a*`, `abc`, true},
		{`a?c`, `abc`, true},
		{`a?c`, `ac`, false},
		{`*`, ``, true},
		{`é?`, `éé`, true},
	}
	for _, tc := range cases {
		if got := ec2PatternMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("ec2PatternMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
	if !utf8.ValidString("é") {
		t.Fatal("source encoding")
	}
}
