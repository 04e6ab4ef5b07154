package ec2

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// Matcher decides whether an instance's tags satisfy an Upstream's filters, with the semantics of
// EC2's own tag filters (docs/codes.md, "Filter semantics"): all filters hold (AND); keys and values
// compare case-sensitively and exactly (`*` and `?` are literal); no filters match every instance. Instance state is not its concern (the caller lists running instances).
//
// A Matcher is immutable and safe for concurrent use; Match does not allocate.
type Matcher struct {
	keys  []string // tags that must exist (keys implied by a pair are dropped)
	pairs []KVPair // tags that must have a value
	never bool     // the same key is required to have two values
	// neverLowered: two keys that are equal once lowercased are required to have different
	// values, which Gloo's lowercased-key map (one value per lowercased key) cannot satisfy.
	neverLowered bool
}

// NewMatcher compiles filters, in time linear in their number. It returns an error if a filter
// does not set exactly one of key and kvPair (Validate reports those as EC2G101).
func NewMatcher(filters []Filter) (*Matcher, error) {
	m := &Matcher{}
	value := map[string]string{}        // pair key -> its value
	valueLowered := map[string]string{} // lowercased pair key -> its value
	for i, f := range filters {
		if !f.wellFormed() {
			return nil, fmt.Errorf("filters[%d]: %s %s", i, codes.FilterKeyOrKVPair, codes.FilterKeyOrKVPair.Message("both or neither"))
		}
		if !f.IsKV() {
			continue
		}
		k, v := f.KVPair.Key, f.KVPair.Value
		if old, dup := value[k]; dup {
			m.never = m.never || old != v
		} else {
			value[k] = v
			m.pairs = append(m.pairs, *f.KVPair)
		}
		lk := strings.ToLower(k)
		if old, dup := valueLowered[lk]; dup {
			m.neverLowered = m.neverLowered || old != v
		} else {
			valueLowered[lk] = v
		}
	}
	seen := map[string]bool{}
	for _, f := range filters {
		if f.IsKV() || seen[*f.Key] {
			continue
		}
		seen[*f.Key] = true
		if _, implied := value[*f.Key]; !implied {
			m.keys = append(m.keys, *f.Key)
		}
	}
	return m, nil
}

// Matcher compiles the spec's filters; see NewMatcher.
func (s Spec) Matcher() (*Matcher, error) { return NewMatcher(s.Filters) }

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

// MatchLowercasedKeys reports whether Gloo's own EC2 plugin may select an instance with these tags:
// it lowercases the instance's tag keys into a map (keeping, of several keys that differ only in
// case, whichever comes last in the instance's tag list) and looks the lowercased filter keys up in
// it; values still compare exactly. As the order of the tag list is not known, an instance with
// such colliding keys matches when some order would make Gloo select it. It does not allocate.
func (m *Matcher) MatchLowercasedKeys(tags map[string]string) bool {
	if m.never || m.neverLowered {
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
