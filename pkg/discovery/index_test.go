package discovery

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func inst(id string, tags map[string]string) ec2api.Instance {
	return ec2api.Instance{ID: id, PrivateIPv4: "10.0.0.1", State: "running", Tags: tags}
}

func mustMatcher(t interface {
	Helper()
	Fatal(...any)
}, fs []ec2.Filter) *ec2.Matcher {
	t.Helper()
	m, err := ec2.NewMatcher(fs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ids(ix *Index, pos []int32) []string {
	out := []string{}
	for _, p := range pos {
		out = append(out, ix.Instance(p).ID)
	}
	return out
}

func TestIndexSelect(t *testing.T) {
	ix := NewIndex([]ec2api.Instance{
		inst("i-1", map[string]string{"app": "web", "env": "prod"}),
		inst("i-2", map[string]string{"app": "web", "env": "dev"}),
		inst("i-3", map[string]string{"App": "web", "env": "prod"}),
		inst("i-4", map[string]string{"app": "api", "canary": ""}),
		inst("i-5", map[string]string{"app": "w*b"}),
		inst("i-6", map[string]string{"APP": "web", "app": "web", "env": "prod"}),
		inst("i-7", nil),
	})
	cases := []struct {
		name          string
		filters       []ec2.Filter
		exact, loOnly []string
	}{
		{"kv and kv", []ec2.Filter{ec2.KVFilter("app", "web"), ec2.KVFilter("env", "prod")}, []string{"i-1", "i-6"}, []string{"i-3"}},
		{"kv", []ec2.Filter{ec2.KVFilter("app", "web")}, []string{"i-1", "i-2", "i-6"}, []string{"i-3"}},
		{"key", []ec2.Filter{ec2.KeyFilter("canary")}, []string{"i-4"}, nil},
		{"key with upper case", []ec2.Filter{ec2.KeyFilter("App")}, []string{"i-3"}, []string{"i-1", "i-2", "i-4", "i-5", "i-6"}},
		{"value is case-sensitive", []ec2.Filter{ec2.KVFilter("app", "WEB")}, nil, nil},
		{"star is literal", []ec2.Filter{ec2.KVFilter("app", "w*b")}, []string{"i-5"}, nil},
		{"no filters", nil, []string{"i-1", "i-2", "i-3", "i-4", "i-5", "i-6", "i-7"}, nil},
		{"conflict", []ec2.Filter{ec2.KVFilter("app", "web"), ec2.KVFilter("app", "api")}, nil, nil},
		{"unknown key", []ec2.Filter{ec2.KeyFilter("nope"), ec2.KVFilter("app", "web")}, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sel := ix.Select(c.filters, mustMatcher(t, c.filters))
			if got := ids(ix, sel.Exact); !slices.Equal(got, orEmpty(c.exact)) {
				t.Errorf("exact = %v, want %v", got, c.exact)
			}
			if got := ids(ix, sel.LowercaseOnly); !slices.Equal(got, orEmpty(c.loOnly)) {
				t.Errorf("lowercase-only = %v, want %v", got, c.loOnly)
			}
		})
	}
}

// TestIndexSelectTwoSpellingsTwoValues: an instance that satisfies every filter once keys are
// lowercased, but only through two spellings of one key carrying the two different values the
// filters require, is not a lowercase-only match (Gloo keeps one value per lowercased key); the
// Matcher decides it, not the posting lists.
func TestIndexSelectTwoSpellingsTwoValues(t *testing.T) {
	ix := NewIndex([]ec2api.Instance{
		inst("i-1", map[string]string{"app": "web", "APP": "api"}),
		inst("i-2", map[string]string{"App": "api", "app": "web"}),
	})
	fs := []ec2.Filter{ec2.KVFilter("app", "web"), ec2.KVFilter("App", "api")}
	sel := ix.Select(fs, mustMatcher(t, fs))
	if got := ids(ix, sel.Exact); !slices.Equal(got, []string{"i-2"}) {
		t.Errorf("exact = %v, want [i-2]", got)
	}
	if len(sel.LowercaseOnly) != 0 {
		t.Errorf("lowercase-only = %v, want none", ids(ix, sel.LowercaseOnly))
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestOverlaps(t *testing.T) {
	sels := []Selection{{Exact: []int32{0, 1, 2}}, {Exact: []int32{2, 3}}, {Exact: []int32{4}}, {Exact: []int32{2}}}
	got := Overlaps(5, sels)
	want := [][]int32{{2}, {2}, nil, {2}}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("overlaps[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if got := Overlaps(5, sels[:1]); got[0] != nil {
		t.Errorf("a single selection overlaps nothing, got %v", got[0])
	}
}

// TestIndexAgreesWithNaiveLoop checks, on random tag sets and filters, that the index selects
// exactly what classifying every instance with pkg/ec2's Matcher selects.
func TestIndexAgreesWithNaiveLoop(t *testing.T) {
	keys := []string{"app", "App", "APP", "env", "Env", "team", "k*", "Name", "é", "É", "ß"}
	values := []string{"a", "b", "A", "*", "", "web"}
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 40).Draw(rt, "instances")
		insts := make([]ec2api.Instance, n)
		for i := range insts {
			tags := rapid.MapOfN(rapid.SampledFrom(keys), rapid.SampledFrom(values), 0, 5).Draw(rt, fmt.Sprintf("tags%d", i))
			insts[i] = inst(fmt.Sprintf("i-%d", i), tags)
		}
		nf := rapid.IntRange(0, 4).Draw(rt, "filters")
		var fs []ec2.Filter
		for i := range nf {
			k := rapid.SampledFrom(keys).Draw(rt, fmt.Sprintf("key%d", i))
			if rapid.Bool().Draw(rt, fmt.Sprintf("kv%d", i)) {
				fs = append(fs, ec2.KVFilter(k, rapid.SampledFrom(values).Draw(rt, fmt.Sprintf("value%d", i))))
			} else {
				fs = append(fs, ec2.KeyFilter(k))
			}
		}
		m, err := ec2.NewMatcher(fs)
		if err != nil {
			rt.Fatal(err)
		}
		got := NewIndex(insts).Select(fs, m)
		want := naiveSelect(insts, m)
		if !slices.Equal(got.Exact, want.Exact) {
			rt.Fatalf("exact: index %v, naive %v (filters %v)", got.Exact, want.Exact, fs)
		}
		if !slices.Equal(got.LowercaseOnly, want.LowercaseOnly) {
			rt.Fatalf("lowercase-only: index %v, naive %v (filters %v)", got.LowercaseOnly, want.LowercaseOnly, fs)
		}
	})
}

func TestIntersect(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		gen := rapid.SliceOfNDistinct(rapid.Int32Range(0, 200), 0, 60, rapid.ID[int32])
		a, b := gen.Draw(rt, "a"), gen.Draw(rt, "b")
		slices.Sort(a)
		slices.Sort(b)
		var want []int32
		for _, x := range a {
			if _, ok := slices.BinarySearch(b, x); ok {
				want = append(want, x)
			}
		}
		if got := intersect(a, b, nil); !slices.Equal(got, want) {
			rt.Fatalf("intersect(%v, %v) = %v, want %v", a, b, got, want)
		}
		ac := slices.Clone(a)
		if got := intersect(ac, b, ac[:0]); !slices.Equal(got, want) {
			rt.Fatalf("in place: intersect(%v, %v) = %v, want %v", a, b, got, want)
		}
	})
}

// TestIndexAgreesWithNaiveLoopOnFleets checks, on random fleets, that SelectAll, a later Select on
// the same index (an Upstream added between two listings, whose keys may not be indexed yet) and
// Overlaps give exactly what classifying every instance with pkg/ec2's Matcher gives, and what
// the previous index gave. The fleets mix keys spelt several ways (ASCII, Unicode with and
// without a lowercase form, the Kelvin sign that lowercases to ASCII "k", invalid UTF-8 bytes
// that both sides lowercase to U+FFFD), values that differ in case, literal wildcards, empty
// values, instances without tags and stopped instances; the filters repeat keys and values.
func TestIndexAgreesWithNaiveLoopOnFleets(t *testing.T) {
	keys := []string{"app", "App", "APP", "env", "Env", "team", "k*", "K*", "\u212a*", "Name", "é", "É", "ß", "\xff", "\xfe", "\ufffd", "x?"}
	values := []string{"a", "b", "A", "*", "", "web", "?"}
	states := []string{"running", "running", "stopped", "pending"}
	filterGen := func(rt *rapid.T, label string) []ec2.Filter {
		nf := rapid.IntRange(0, 4).Draw(rt, label+"n")
		var fs []ec2.Filter
		for i := range nf {
			k := rapid.SampledFrom(keys).Draw(rt, fmt.Sprintf("%skey%d", label, i))
			if rapid.IntRange(0, 2).Draw(rt, fmt.Sprintf("%skv%d", label, i)) > 0 {
				fs = append(fs, ec2.KVFilter(k, rapid.SampledFrom(values).Draw(rt, fmt.Sprintf("%svalue%d", label, i))))
			} else {
				fs = append(fs, ec2.KeyFilter(k))
			}
		}
		return fs
	}
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(0, 60).Draw(rt, "instances")
		insts := make([]ec2api.Instance, n)
		for i := range insts {
			var tags map[string]string
			if rapid.IntRange(0, 9).Draw(rt, fmt.Sprintf("untagged%d", i)) > 0 {
				tags = rapid.MapOfN(rapid.SampledFrom(keys), rapid.SampledFrom(values), 0, 6).Draw(rt, fmt.Sprintf("tags%d", i))
			}
			insts[i] = inst(fmt.Sprintf("i-%d", i), tags)
			insts[i].State = rapid.SampledFrom(states).Draw(rt, fmt.Sprintf("state%d", i))
		}
		nt := rapid.IntRange(0, 8).Draw(rt, "upstreams")
		targets := make([]*Target, nt)
		for j := range targets {
			fs := filterGen(rt, fmt.Sprintf("u%d.", j))
			targets[j] = &Target{Upstream: &ec2.Upstream{Spec: ec2.Spec{Filters: fs}}, Matcher: mustMatcher(rt, fs)}
		}
		if nt > 0 && rapid.Bool().Draw(rt, "invalid") {
			targets[0].Matcher = nil // an invalid Upstream selects nothing
		}
		ix := NewIndex(insts)
		got := ix.SelectAll(targets)
		want := make([]Selection, nt)
		for j, tg := range targets {
			if tg.Matcher != nil {
				want[j] = naiveSelect(insts, tg.Matcher)
			}
		}
		old := newBaselineIndex(insts).SelectAll(targets)
		for j := range targets {
			for _, ref := range []struct {
				name string
				sel  Selection
			}{{"naive", want[j]}, {"previous index", old[j]}} {
				if !slices.Equal(got[j].Exact, ref.sel.Exact) || !slices.Equal(got[j].LowercaseOnly, ref.sel.LowercaseOnly) {
					rt.Fatalf("upstream %d (filters %v): index %v, %s %v", j, targets[j].Upstream.Spec.Filters, got[j], ref.name, ref.sel)
				}
			}
		}
		gotOv, wantOv := Overlaps(len(insts), got), baselineOverlaps(len(insts), want)
		for j := range targets {
			if !slices.Equal(gotOv[j], wantOv[j]) {
				rt.Fatalf("overlaps of upstream %d: %v, want %v", j, gotOv[j], wantOv[j])
			}
		}
		// An Upstream added later, matched against the same listing.
		fs := filterGen(rt, "later.")
		m := mustMatcher(rt, fs)
		later, wantLater := ix.Select(fs, m), naiveSelect(insts, m)
		if !slices.Equal(later.Exact, wantLater.Exact) || !slices.Equal(later.LowercaseOnly, wantLater.LowercaseOnly) {
			rt.Fatalf("later upstream (filters %v): index %v, naive %v", fs, later, wantLater)
		}
	})
}

// TestIndexAgreesWithNaiveLoopAtScale runs the benchmark's fleet shape (keys spelt two ways,
// shared values, Upstreams without filters) at a tenth of its size through the index, the
// previous index and the naive loop.
func TestIndexAgreesWithNaiveLoopAtScale(t *testing.T) {
	insts, targets := benchFleet(10_000, 300)
	gotSels, gotOv := matchIndexed(insts, targets)
	for _, ref := range []struct {
		name string
		fn   func([]ec2api.Instance, []*Target) ([]Selection, [][]int32)
	}{{"naive", matchNaive}, {"previous index", matchBaseline}} {
		wantSels, wantOv := ref.fn(insts, targets)
		if i := sameMatching(gotSels, wantSels, gotOv, wantOv); i >= 0 {
			t.Fatalf("upstream %d (filters %v): index %v / overlap %d, %s %v / overlap %d", i, targets[i].Upstream.Spec.Filters,
				gotSels[i], len(gotOv[i]), ref.name, wantSels[i], len(wantOv[i]))
		}
	}
	loOnly := 0
	for _, s := range gotSels {
		loOnly += len(s.LowercaseOnly)
	}
	if loOnly == 0 {
		t.Fatal("the fleet has no lowercase-only matches: the case path is not exercised")
	}
}

// TestIndexConcurrentSelect runs Selects with different keys on one index at once (the race
// detector checks the lazily built posting lists).
func TestIndexConcurrentSelect(t *testing.T) {
	insts, targets := benchFleet(2_000, 40)
	ix := NewIndex(insts)
	want := make([]Selection, len(targets))
	for i, tg := range targets {
		want[i] = naiveSelect(insts, tg.Matcher)
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(targets))
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := ix.Select(tg.Upstream.Spec.Filters, tg.Matcher)
			if !slices.Equal(got.Exact, want[i].Exact) || !slices.Equal(got.LowercaseOnly, want[i].LowercaseOnly) {
				errs <- fmt.Sprintf("upstream %d: %v, want %v", i, got, want[i])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestIndexIndexesOnlyFilterKeys: tags no filter uses are never indexed (a listing's Name tags
// alone would make one posting list per instance), and a key first used by a later Select is
// indexed then, in every spelling.
func TestIndexIndexesOnlyFilterKeys(t *testing.T) {
	ix := NewIndex([]ec2api.Instance{
		inst("i-1", map[string]string{"Name": "a", "app": "web", "env": "prod"}),
		inst("i-2", map[string]string{"Name": "b", "App": "web", "Env": "prod"}),
	})
	fs := []ec2.Filter{ec2.KVFilter("app", "web")}
	ix.SelectAll([]*Target{{Upstream: &ec2.Upstream{Spec: ec2.Spec{Filters: fs}}, Matcher: mustMatcher(t, fs)}})
	if got := slices.Sorted(maps.Keys(ix.keys)); !slices.Equal(got, []string{"app"}) {
		t.Fatalf("indexed keys after matching on app: %v, want [app]", got)
	}
	if got := ix.keys["app"].spellings; !slices.Equal(got, []string{"app", "App"}) {
		t.Errorf("spellings of app: %v, want [app App]", got)
	}
	fs = []ec2.Filter{ec2.KVFilter("ENV", "prod")}
	sel := ix.Select(fs, mustMatcher(t, fs))
	if len(sel.Exact) != 0 || !slices.Equal(ids(ix, sel.LowercaseOnly), []string{"i-1", "i-2"}) {
		t.Errorf("ENV=prod: %v, want lowercase-only [i-1 i-2]", sel)
	}
	if got := slices.Sorted(maps.Keys(ix.keys)); !slices.Equal(got, []string{"app", "env"}) {
		t.Errorf("indexed keys after a later Select on ENV: %v, want [app env]", got)
	}
}
