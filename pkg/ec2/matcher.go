package ec2

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Matcher decides whether an instance's tags satisfy an Upstream's filters, with the semantics of
// SPEC.md "Filter semantics" — the same as the EC2 API filters EC2Filters produces: all filters hold
// (AND); keys and values compare case-sensitively and exactly (`*` and `?` are literal); no filters
// match every instance. Instance state is not its concern (the caller lists running instances).
//
// A Matcher is immutable and safe for concurrent use; Match does not allocate.
type Matcher struct {
	keys  []string // tags that must exist (keys implied by a pair are dropped)
	pairs []KVPair // tags that must have a value
	never bool     // the same key is required to have two values
}

// NewMatcher compiles filters. It returns an error if a filter does not set exactly one of key and
// kvPair (Validate reports those as EC2G101).
func NewMatcher(filters []Filter) (*Matcher, error) {
	m := &Matcher{}
	for i, f := range filters {
		if !f.wellFormed() {
			return nil, fmt.Errorf("filters[%d]: %s exactly one of key or kvPair must be set", i, CodeFilterKeyOrKVPair)
		}
		if !f.IsKV() {
			continue
		}
		dup := false
		for _, p := range m.pairs {
			if p.Key == f.KVPair.Key {
				dup = true
				if p.Value != f.KVPair.Value {
					m.never = true
				}
			}
		}
		if !dup {
			m.pairs = append(m.pairs, *f.KVPair)
		}
	}
	for _, f := range filters {
		if f.IsKV() || m.hasKey(*f.Key) {
			continue
		}
		m.keys = append(m.keys, *f.Key)
	}
	return m, nil
}

// Matcher compiles the spec's filters; see NewMatcher.
func (s Spec) Matcher() (*Matcher, error) { return NewMatcher(s.Filters) }

func (m *Matcher) hasKey(k string) bool {
	for _, x := range m.keys {
		if x == k {
			return true
		}
	}
	for _, p := range m.pairs {
		if p.Key == k {
			return true
		}
	}
	return false
}

// SelectsNothing reports whether no tag set can match (conflicting values for one key).
func (m *Matcher) SelectsNothing() bool { return m.never }

// SelectsEverything reports whether every tag set matches (no filters).
func (m *Matcher) SelectsEverything() bool { return !m.never && len(m.keys) == 0 && len(m.pairs) == 0 }

// Match reports whether the tags satisfy every filter, comparing exactly as AWS does.
func (m *Matcher) Match(tags map[string]string) bool {
	if m.never {
		return false
	}
	for _, p := range m.pairs {
		if v, ok := tags[p.Key]; !ok || v != p.Value {
			return false
		}
	}
	for _, k := range m.keys {
		if _, ok := tags[k]; !ok {
			return false
		}
	}
	return true
}

// MatchLowercasedKeys reports whether the tags satisfy every filter when tag keys are compared after
// lowercasing both sides, as Gloo's own EC2 plugin does (values still compare exactly). When an
// instance has several tags whose keys differ only in case, any of them may satisfy a filter (Gloo
// keeps whichever comes last in the instance's tag list). It does not allocate.
func (m *Matcher) MatchLowercasedKeys(tags map[string]string) bool {
	if m.never {
		return false
	}
	for _, p := range m.pairs {
		found := false
		for k, v := range tags {
			if v == p.Value && equalLower(k, p.Key) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	for _, want := range m.keys {
		found := false
		for k := range tags {
			if equalLower(k, want) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// MatchKind classifies an instance against an Upstream for audits.
type MatchKind int

const (
	// NoMatch: neither AWS's exact comparison nor Gloo's lowercased keys select the instance.
	NoMatch MatchKind = iota
	// Match: the instance matches exactly (as AWS, ec2guard and the EC2 API filters decide).
	Match
	// MatchOnlyLowercasedKeys: only Gloo's lowercased-key comparison would select the instance.
	MatchOnlyLowercasedKeys
)

// String returns "no-match", "match" or "match-only-lowercased-keys".
func (k MatchKind) String() string {
	switch k {
	case Match:
		return "match"
	case MatchOnlyLowercasedKeys:
		return "match-only-lowercased-keys"
	}
	return "no-match"
}

// Classify tells an exact match from one that only Gloo's lowercased keys would produce.
func (m *Matcher) Classify(tags map[string]string) MatchKind {
	switch {
	case m.Match(tags):
		return Match
	case m.MatchLowercasedKeys(tags):
		return MatchOnlyLowercasedKeys
	}
	return NoMatch
}

// equalLower reports whether strings.ToLower(a) == strings.ToLower(b), without allocating.
func equalLower(a, b string) bool {
	for a != "" && b != "" {
		// Fast path for ASCII.
		if a[0] < utf8.RuneSelf && b[0] < utf8.RuneSelf {
			ca, cb := a[0], b[0]
			if 'A' <= ca && ca <= 'Z' {
				ca += 'a' - 'A'
			}
			if 'A' <= cb && cb <= 'Z' {
				cb += 'a' - 'A'
			}
			if ca != cb {
				return false
			}
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if unicode.ToLower(ra) != unicode.ToLower(rb) {
			return false
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b == ""
}
