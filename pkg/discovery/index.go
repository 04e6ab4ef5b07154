package discovery

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// Index is an inverted index of one listing's instances by tag: for every tag key, spelt exactly
// as the instances spell it, the ascending positions of the instances carrying it, per value.
//
// An Upstream's exact matches (the instances EC2's own filters select) are then the intersection
// of its filters' posting lists, shortest first, with no per-instance check: an instance is in the
// list of key k and value v exactly when its tag k equals v, which is what pkg/ec2's Matcher
// checks. When one of the filters' keys is spelt another way in the listing, the candidates are
// the intersection of the filters' lists merged over every spelling of their keys; the exact
// matches are those of them in the exact lists, and the others are what Gloo's lowercased-key
// comparison alone would select, as the Matcher's MatchLowercasedKeys decides (see selectLocked).
// A dense list (at least one instance in 64) gets a bitmap on its first use in an intersection.
//
// The index is built lazily, key by key: a listing carries many tags (names, owners, cost
// centres) that no filter of the group uses, and indexing them costs more than the matching.
// Select and SelectAll first index, in one pass over the instances, the keys (in every spelling)
// their filters use that are not indexed yet; a later Select with other keys (an Upstream added
// between two listings) indexes those then. An Index is safe for concurrent use.
type Index struct {
	instances []ec2api.Instance

	mu      sync.Mutex
	all     []int32              // 0..len-1, made on first use
	keys    map[string]*keyIndex // lowercased tag key -> postings of its spellings, once indexed
	lowered map[string]string    // filter key -> lowercased (filter keys are few; saves ToLower)
	scratch []int32              // intersection buffer, reused under mu
}

// keyIndex holds the posting lists of every spelling of one lowercased tag key.
type keyIndex struct {
	spellings []string             // the tag keys spelt this way, in order of first appearance
	exact     map[string]*postings // spelling -> its postings
	lowered   map[string]*plist    // value -> union over spellings (made on demand, >1 spelling)
	loweredAt *plist               // union over spellings of the instances with the key (on demand)
}

// postings are the instances carrying one exactly spelt tag key.
type postings struct {
	byValue map[string]*plist // value -> its instances
	has     *plist            // every value's instances merged (made on demand)
}

// plist is a posting list: ascending positions, and, for a list used in an intersection that
// holds at least one instance in 64 (then the bitmap is at most twice the list's size), a bitmap
// of them, which turns the intersection with a shorter list into one bit test per element.
type plist struct {
	ids  []int32
	bits []uint64 // made on first use; nil for a sparse list
}

func (p *plist) len() int {
	if p == nil {
		return 0
	}
	return len(p.ids)
}

// NewIndex indexes instances (expected to be distinct by ID). The index keeps the slice; its
// posting lists are made on first use (see Index).
func NewIndex(instances []ec2api.Instance) *Index {
	return &Index{instances: instances, keys: map[string]*keyIndex{}, lowered: map[string]string{}}
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

// lower is strings.ToLower without an allocation for keys already in lower case. Its result is
// equal for two keys exactly when pkg/ec2 compares them as equal once lowercased (both map every
// rune through unicode.ToLower, an invalid byte to U+FFFD).
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

// Select matches filters (compiled into m by pkg/ec2) against the indexed instances. The
// returned slices must not be modified: they may be the index's own posting lists.
func (ix *Index) Select(filters []ec2.Filter, m *ec2.Matcher) Selection {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !m.SelectsNothing() && !m.SelectsEverything() {
		ix.ensure(filterKeys(nil, filters, ix))
	}
	var arena []int32
	return ix.selectLocked(filters, m, &arena)
}

// SelectAll matches every target (valid ones; an invalid target selects nothing) against the
// index; the result is in the order of targets. The keys every target needs are indexed in one
// pass; the selections share one backing array. The returned slices must not be modified.
func (ix *Index) SelectAll(targets []*Target) []Selection {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var lks []string
	for _, t := range targets {
		if t.Matcher != nil && !t.Matcher.SelectsNothing() && !t.Matcher.SelectsEverything() {
			lks = filterKeys(lks, t.Upstream.Spec.Filters, ix)
		}
	}
	ix.ensure(lks)
	out := make([]Selection, len(targets))
	var arena []int32
	for i, t := range targets {
		if t.Matcher == nil {
			continue
		}
		out[i] = ix.selectLocked(t.Upstream.Spec.Filters, t.Matcher, &arena)
	}
	return out
}

// filterKeys appends the lowercased keys of filters to dst.
func filterKeys(dst []string, filters []ec2.Filter, ix *Index) []string {
	for _, f := range filters {
		dst = append(dst, ix.lowerKey(f.TagKey()))
	}
	return dst
}

// lowerKey is lower(k), remembered for filter keys (the same few keys come back on every
// Upstream and every refresh).
func (ix *Index) lowerKey(k string) string {
	if !needsLowering(k) {
		return k
	}
	lk, ok := ix.lowered[k]
	if !ok {
		lk = strings.ToLower(k)
		ix.lowered[k] = lk
	}
	return lk
}

// ensure indexes the lowercased keys in lks that are not indexed yet, in one pass over the
// instances. ix.mu is held.
func (ix *Index) ensure(lks []string) {
	var pending map[string]*keyIndex
	for _, lk := range lks {
		if _, done := ix.keys[lk]; done {
			continue
		}
		if pending == nil {
			pending = map[string]*keyIndex{}
		}
		if _, dup := pending[lk]; !dup {
			ki := &keyIndex{exact: map[string]*postings{}}
			pending[lk] = ki
			ix.keys[lk] = ki
		}
	}
	if pending == nil {
		return
	}
	// slot remembers, per exact tag key met, its postings (nil: not a key being indexed), so
	// that a tag costs one map lookup unless its key is indexed.
	slot := map[string]*postings{}
	for i := range ix.instances {
		pos := int32(i)
		for k, v := range ix.instances[i].Tags {
			p, seen := slot[k]
			if !seen {
				if ki := pending[lower(k)]; ki != nil {
					p = &postings{byValue: map[string]*plist{}}
					ki.spellings = append(ki.spellings, k)
					ki.exact[k] = p
				}
				slot[k] = p
			}
			if p == nil {
				continue
			}
			l := p.byValue[v]
			if l == nil {
				l = &plist{}
				p.byValue[v] = l
			}
			l.ids = append(l.ids, pos)
		}
	}
}

// list returns the instances whose tag spelt exactly as the filter's key satisfies the filter
// (nil for none). ix.mu is held.
func (ix *Index) list(ki *keyIndex, f ec2.Filter) *plist {
	p := ki.exact[f.TagKey()]
	if p == nil {
		return nil
	}
	if f.KVPair != nil {
		return p.byValue[f.KVPair.Value]
	}
	return p.instances()
}

// instances returns every instance carrying the key, whatever its value.
func (p *postings) instances() *plist {
	if p.has == nil {
		lists := make([]*plist, 0, len(p.byValue))
		for _, l := range p.byValue {
			lists = append(lists, l)
		}
		p.has = mergeLists(lists)
	}
	return p.has
}

// loweredList returns the instances with a tag whose key equals the filter's once lowercased and
// that satisfies the filter: the union over the key's spellings. ix.mu is held.
func (ix *Index) loweredList(ki *keyIndex, f ec2.Filter) *plist {
	switch {
	case len(ki.spellings) == 0:
		return nil
	case len(ki.spellings) == 1:
		p := ki.exact[ki.spellings[0]]
		if f.KVPair != nil {
			return p.byValue[f.KVPair.Value]
		}
		return p.instances()
	case f.KVPair == nil:
		if ki.loweredAt == nil {
			lists := make([]*plist, 0, len(ki.spellings))
			for _, s := range ki.spellings {
				lists = append(lists, ki.exact[s].instances())
			}
			ki.loweredAt = mergeLists(lists)
		}
		return ki.loweredAt
	}
	v := f.KVPair.Value
	if l, ok := ki.lowered[v]; ok {
		return l
	}
	lists := make([]*plist, 0, len(ki.spellings))
	for _, s := range ki.spellings {
		lists = append(lists, ki.exact[s].byValue[v])
	}
	l := mergeLists(lists)
	if ki.lowered == nil {
		ki.lowered = map[string]*plist{}
	}
	ki.lowered[v] = l
	return l
}

// mergeLists returns the ascending union of lists (one of them itself when the others are
// empty; an empty list, never nil, when all are).
func mergeLists(lists []*plist) *plist {
	only := &plist{}
	n, nonEmpty := 0, 0
	for _, l := range lists {
		if l.len() > 0 {
			only = l
			n += len(l.ids)
			nonEmpty++
		}
	}
	if nonEmpty <= 1 {
		return only
	}
	out := make([]int32, 0, n)
	for _, l := range lists {
		if l != nil {
			out = append(out, l.ids...)
		}
	}
	slices.Sort(out)
	return &plist{ids: slices.Compact(out)}
}

// selectLocked matches one Upstream; results that are not a posting list itself are appended to
// *arena. ix.mu is held and the filters' keys are indexed.
func (ix *Index) selectLocked(filters []ec2.Filter, m *ec2.Matcher, arena *[]int32) Selection {
	switch {
	case m.SelectsNothing():
		return Selection{}
	case m.SelectsEverything():
		if ix.all == nil {
			ix.all = make([]int32, len(ix.instances))
			for i := range ix.all {
				ix.all[i] = int32(i)
			}
		}
		return Selection{Exact: ix.all}
	}
	var exactBuf, loweredBuf [8]*plist
	exact, lowered := exactBuf[:0], loweredBuf[:0]
	variants := false
	for _, f := range filters {
		ki := ix.keys[ix.lowerKey(f.TagKey())]
		if len(ki.spellings) > 1 || len(ki.spellings) == 1 && ki.spellings[0] != f.TagKey() {
			variants = true
		}
		exact = append(exact, ix.list(ki, f))
		lowered = append(lowered, ix.loweredList(ki, f))
	}
	if !variants {
		return Selection{Exact: ix.intersectAll(exact, arena)}
	}
	// Some filter key is spelt another way in the listing: the candidates satisfy every filter
	// for some spelling of its key (a superset of the exact matches, and few more); the exact
	// matches are those of them in the exact lists of the filters whose lists differ.
	cands := ix.intersectAll(lowered, nil)
	if len(cands) == 0 {
		return Selection{}
	}
	start := len(*arena)
	buf := append(*arena, cands...)
	ex := buf[start:]
	for i := range exact {
		if len(ex) == 0 {
			break
		}
		if exact[i] != lowered[i] {
			ex = ix.intersect(ex, exact[i], ex[:0])
		}
	}
	buf = buf[:start+len(ex)]
	var sel Selection
	if len(ex) > 0 {
		sel.Exact = buf[start:len(buf):len(buf)]
	}
	// The other candidates hold every filter only through another spelling of some key. Whether
	// Gloo selects them depends on the Upstream alone, not on the instance: the Matcher's
	// lowercased-key comparison holds for an instance exactly when every filter holds for some
	// spelling of its key, unless the filters require two spellings of one key to have different
	// values (Gloo keeps one value per lowercased key), which no instance satisfies. So the
	// Matcher decides for the first such candidate, and its answer holds for the others.
	start = len(buf)
	decided, gloo := false, false
	j := 0
	for _, pos := range cands {
		for j < len(sel.Exact) && sel.Exact[j] < pos {
			j++
		}
		if j < len(sel.Exact) && sel.Exact[j] == pos {
			continue
		}
		if !decided {
			decided, gloo = true, m.MatchLowercasedKeys(ix.instances[pos].Tags)
		}
		if !gloo {
			break
		}
		buf = append(buf, pos)
	}
	if n := len(buf); n > start {
		sel.LowercaseOnly = buf[start:n:n]
	}
	*arena = buf
	return sel
}

// intersectAll intersects lists, shortest first (lists itself is not reordered). With arena nil
// the result may be a list's own ids or the index's scratch buffer (valid until the next call);
// otherwise it is a list's own ids or appended to *arena.
func (ix *Index) intersectAll(lists []*plist, arena *[]int32) []int32 {
	for _, l := range lists {
		if l.len() == 0 {
			return nil
		}
	}
	var sorted [8]*plist
	lists = append(sorted[:0], lists...)
	slices.SortFunc(lists, func(a, b *plist) int { return len(a.ids) - len(b.ids) })
	lists = slices.Compact(lists) // the same list twice (a repeated filter)
	if len(lists) == 1 {
		return lists[0].ids
	}
	out := ix.intersect(lists[0].ids, lists[1], ix.scratch[:0])
	for _, l := range lists[2:] {
		if len(out) == 0 {
			break
		}
		out = ix.intersect(out, l, out[:0])
	}
	ix.scratch = out[:0]
	if len(out) == 0 {
		return nil
	}
	if arena == nil {
		return out
	}
	start := len(*arena)
	*arena = append(*arena, out...)
	n := len(*arena)
	return (*arena)[start:n:n]
}

// intersect appends to dst the elements of the ascending list a that are in b: one bit test
// each when b is dense, else galloping through b's ids. dst may alias a. ix.mu is held.
func (ix *Index) intersect(a []int32, b *plist, dst []int32) []int32 {
	if b.len() == 0 {
		return dst
	}
	if b.bits == nil && len(b.ids)*64 >= len(ix.instances) {
		b.bits = make([]uint64, (len(ix.instances)+63)/64)
		for _, x := range b.ids {
			b.bits[x>>6] |= 1 << (x & 63)
		}
	}
	if b.bits == nil {
		return intersect(a, b.ids, dst)
	}
	for _, x := range a {
		if b.bits[x>>6]&(1<<(x&63)) != 0 {
			dst = append(dst, x)
		}
	}
	return dst
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

// Overlaps returns, per selection, the exact matches that at least one other selection of the
// same listing also matches exactly (instances routed to by more than one Upstream). The
// returned slices must not be modified: one that is a whole selection's Exact is that slice.
func Overlaps(n int, sels []Selection) [][]int32 {
	out := make([][]int32, len(sels))
	if len(sels) < 2 {
		return out
	}
	counts := make([]uint8, n) // 0, 1, or 2 for "more than one"
	for _, s := range sels {
		for _, pos := range s.Exact {
			if counts[pos] < 2 {
				counts[pos]++
			}
		}
	}
	// Count first, so that the partial overlaps share one exactly sized array and a selection
	// that overlaps entirely is returned as it is.
	partial := 0
	sizes := make([]int, len(sels))
	for i, s := range sels {
		k := 0
		for _, pos := range s.Exact {
			if counts[pos] > 1 {
				k++
			}
		}
		sizes[i] = k
		if k < len(s.Exact) {
			partial += k
		}
	}
	buf := make([]int32, 0, partial)
	for i, s := range sels {
		switch k := sizes[i]; {
		case k == 0:
		case k == len(s.Exact):
			out[i] = s.Exact[:k:k]
		default:
			start := len(buf)
			for _, pos := range s.Exact {
				if counts[pos] > 1 {
					buf = append(buf, pos)
				}
			}
			out[i] = buf[start:len(buf):len(buf)]
		}
	}
	return out
}
