package discovery

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// Index is an inverted index of one listing's instances by tag, built once per refresh. Matching
// an Upstream looks up the posting list of each of its filters, walks only the shortest one (the
// most selective filter) and verifies every candidate with pkg/ec2's Matcher — the very code the
// webhook and the CLI use — so the cost of matching a group is the sum of those shortest lists,
// not Upstreams × instances.
//
// Tag keys are indexed lowercased: a posting list is then a superset of both the exact matches
// and the matches Gloo's own lowercased-key comparison would add, so one walk finds both.
type Index struct {
	instances []ec2api.Instance
	all       []int32
	kv        map[string]map[string][]int32 // lowercased key -> value -> positions (ascending)
	keys      map[string][]int32            // lowercased key -> positions (ascending)
	spellings map[string][]string           // lowercased key -> the tag keys spelt that way
}

// NewIndex indexes instances (expected to be distinct by ID). The index keeps the slice.
func NewIndex(instances []ec2api.Instance) *Index {
	ix := &Index{
		instances: instances,
		all:       make([]int32, len(instances)),
		kv:        map[string]map[string][]int32{},
		keys:      map[string][]int32{},
		spellings: map[string][]string{},
	}
	lowered := map[string]string{} // tag key -> lowercased
	for i := range instances {
		pos := int32(i)
		ix.all[i] = pos
		for k, v := range instances[i].Tags {
			lk, ok := lowered[k]
			if !ok {
				lk = lower(k)
				lowered[k] = lk
				ix.spellings[lk] = append(ix.spellings[lk], k)
			}
			ix.keys[lk] = appendPosting(ix.keys[lk], pos)
			byValue := ix.kv[lk]
			if byValue == nil {
				byValue = map[string][]int32{}
				ix.kv[lk] = byValue
			}
			byValue[v] = appendPosting(byValue[v], pos)
		}
	}
	return ix
}

// appendPosting appends pos unless it is already last (an instance with two keys that differ
// only in case lands in the same lowercased list twice).
func appendPosting(p []int32, pos int32) []int32 {
	if n := len(p); n > 0 && p[n-1] == pos {
		return p
	}
	return append(p, pos)
}

// needsLowering reports whether strings.ToLower could change s.
func needsLowering(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return true
		}
	}
	return false
}

func lower(s string) string {
	if needsLowering(s) {
		return strings.ToLower(s)
	}
	return s
}

// Len is the number of indexed instances.
func (ix *Index) Len() int { return len(ix.instances) }

// Instance returns the instance at position i.
func (ix *Index) Instance(i int32) *ec2api.Instance { return &ix.instances[i] }

// Selection is what one Upstream selects from a listing, as positions into the index.
type Selection struct {
	// Exact are the instances the filters select, comparing exactly as AWS does (ascending).
	Exact []int32
	// LowercaseOnly are the instances that only Gloo's lowercased-key comparison would select.
	LowercaseOnly []int32
}

// Select matches filters (compiled into m by pkg/ec2) against the indexed instances: it
// intersects the filters' posting lists, shortest first, and verifies every remaining candidate
// with the Matcher. The returned slices must not be modified (an Upstream without filters gets
// the index's own list).
func (ix *Index) Select(filters []ec2.Filter, m *ec2.Matcher) Selection {
	switch {
	case m.SelectsNothing():
		return Selection{}
	case m.SelectsEverything():
		return Selection{Exact: ix.all}
	}
	// Only an instance with a tag key that differs from a filter key in case alone can match
	// case-insensitively but not exactly; for any other, Matcher.Classify is Matcher.Match.
	variants := ix.variants(filters)
	var sel Selection
	for _, pos := range ix.candidates(filters) {
		tags := ix.instances[pos].Tags
		switch {
		case m.Match(tags):
			sel.Exact = append(sel.Exact, pos)
		case len(variants) > 0 && hasAnyKey(tags, variants) && m.MatchLowercasedKeys(tags):
			sel.LowercaseOnly = append(sel.LowercaseOnly, pos)
		}
	}
	return sel
}

// candidates intersects the filters' posting lists, shortest first. With keys indexed
// lowercased the result is a superset of both the exact and the lowercased-key matches.
func (ix *Index) candidates(filters []ec2.Filter) []int32 {
	lists := make([][]int32, 0, len(filters))
	for _, f := range filters {
		var p []int32
		switch {
		case f.KVPair != nil:
			p = ix.kv[lower(f.KVPair.Key)][f.KVPair.Value]
		case f.Key != nil:
			p = ix.keys[lower(*f.Key)]
		}
		if len(p) == 0 {
			return nil
		}
		lists = append(lists, p)
	}
	slices.SortFunc(lists, func(a, b []int32) int { return len(a) - len(b) })
	if len(lists) == 1 {
		return lists[0]
	}
	out := intersect(lists[0], lists[1], nil)
	for _, l := range lists[2:] {
		if len(out) == 0 {
			break
		}
		out = intersect(out, l, out[:0])
	}
	return out
}

// intersect appends to dst the elements of the ascending list a that are in the ascending list
// b (best with len(a) <= len(b)), galloping through b. dst may alias a.
func intersect(a, b, dst []int32) []int32 {
	lo := 0
	for _, x := range a {
		if lo >= len(b) {
			break
		}
		if b[lo] >= x {
			if b[lo] == x {
				dst = append(dst, x)
				lo++
			}
			continue
		}
		// b[lo] < x: double the stride until b[lo+bound] >= x (or the end), then binary-search
		// the last stride.
		bound := 1
		for lo+bound < len(b) && b[lo+bound] < x {
			bound *= 2
		}
		start := lo + bound/2 + 1
		end := min(lo+bound+1, len(b))
		i, found := slices.BinarySearch(b[start:end], x)
		lo = start + i
		if found {
			dst = append(dst, x)
			lo++
		}
	}
	return dst
}

// variants returns the listing's tag keys that differ from one of the filters' keys in case only.
func (ix *Index) variants(filters []ec2.Filter) []string {
	var out []string
	for _, f := range filters {
		k := f.TagKey()
		for _, s := range ix.spellings[lower(k)] {
			if s != k {
				out = append(out, s)
			}
		}
	}
	return out
}

func hasAnyKey(tags map[string]string, keys []string) bool {
	for _, k := range keys {
		if _, ok := tags[k]; ok {
			return true
		}
	}
	return false
}

// SelectAll matches every target (valid ones; an invalid target selects nothing) against the
// index; the result is in the order of targets.
func (ix *Index) SelectAll(targets []*Target) []Selection {
	out := make([]Selection, len(targets))
	for i, t := range targets {
		if t.Matcher == nil {
			continue
		}
		out[i] = ix.Select(t.Upstream.Spec.Filters, t.Matcher)
	}
	return out
}

// Overlaps returns, per selection, the exact matches that at least one other selection of the
// same listing also matches exactly (instances routed to by more than one Upstream).
func Overlaps(n int, sels []Selection) [][]int32 {
	out := make([][]int32, len(sels))
	if len(sels) < 2 {
		return out
	}
	counts := make([]uint16, n)
	for _, s := range sels {
		for _, pos := range s.Exact {
			if counts[pos] < 2 {
				counts[pos]++
			}
		}
	}
	for i, s := range sels {
		for _, pos := range s.Exact {
			if counts[pos] > 1 {
				out[i] = append(out[i], pos)
			}
		}
	}
	return out
}
