package discovery

import (
	"slices"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// baselineIndex is the index as it was before exact-key posting lists, kept as the benchmark
// baseline and as a second reference in the property test: an inverted index of one listing's
// instances by tag, built once per refresh. Matching an Upstream looks up the posting list of
// each of its filters, walks only the shortest one (the most selective filter) and verifies
// every candidate with pkg/ec2's Matcher.
//
// Tag keys are indexed lowercased: a posting list is then a superset of both the exact matches
// and the matches Gloo's own lowercased-key comparison would add, so one walk finds both.
type baselineIndex struct {
	instances []ec2api.Instance
	all       []int32
	kv        map[string]map[string][]int32 // lowercased key -> value -> positions (ascending)
	keys      map[string][]int32            // lowercased key -> positions (ascending)
	spellings map[string][]string           // lowercased key -> the tag keys spelt that way
}

// newBaselineIndex indexes instances (expected to be distinct by ID). The index keeps the slice.
func newBaselineIndex(instances []ec2api.Instance) *baselineIndex {
	ix := &baselineIndex{
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
			ix.keys[lk] = baselineAppendPosting(ix.keys[lk], pos)
			byValue := ix.kv[lk]
			if byValue == nil {
				byValue = map[string][]int32{}
				ix.kv[lk] = byValue
			}
			byValue[v] = baselineAppendPosting(byValue[v], pos)
		}
	}
	return ix
}

// baselineAppendPosting appends pos unless it is already last (an instance with two keys that
// differ only in case lands in the same lowercased list twice).
func baselineAppendPosting(p []int32, pos int32) []int32 {
	if n := len(p); n > 0 && p[n-1] == pos {
		return p
	}
	return append(p, pos)
}

// Len is the number of indexed instances.
func (ix *baselineIndex) Len() int { return len(ix.instances) }

// Instance returns the instance at position i.
func (ix *baselineIndex) Instance(i int32) *ec2api.Instance { return &ix.instances[i] }

// Select matches filters (compiled into m by pkg/ec2) against the indexed instances: it
// intersects the filters' posting lists, shortest first, and verifies every remaining candidate
// with the Matcher. The returned slices must not be modified (an Upstream without filters gets
// the index's own list).
func (ix *baselineIndex) Select(filters []ec2.Filter, m *ec2.Matcher) Selection {
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
		case len(variants) > 0 && baselineHasAnyKey(tags, variants) && m.MatchLowercasedKeys(tags):
			sel.LowercaseOnly = append(sel.LowercaseOnly, pos)
		}
	}
	return sel
}

// candidates intersects the filters' posting lists, shortest first. With keys indexed
// lowercased the result is a superset of both the exact and the lowercased-key matches.
func (ix *baselineIndex) candidates(filters []ec2.Filter) []int32 {
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

// variants returns the listing's tag keys that differ from one of the filters' keys in case only.
func (ix *baselineIndex) variants(filters []ec2.Filter) []string {
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

func baselineHasAnyKey(tags map[string]string, keys []string) bool {
	for _, k := range keys {
		if _, ok := tags[k]; ok {
			return true
		}
	}
	return false
}

// SelectAll matches every target (valid ones; an invalid target selects nothing) against the
// index; the result is in the order of targets.
func (ix *baselineIndex) SelectAll(targets []*Target) []Selection {
	out := make([]Selection, len(targets))
	for i, t := range targets {
		if t.Matcher == nil {
			continue
		}
		out[i] = ix.Select(t.Upstream.Spec.Filters, t.Matcher)
	}
	return out
}

// baselineOverlaps returns, per selection, the exact matches that at least one other selection
// of the same listing also matches exactly (instances routed to by more than one Upstream).
func baselineOverlaps(n int, sels []Selection) [][]int32 {
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
