package discovery

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func inst(id string, tags map[string]string) ec2api.Instance {
	return ec2api.Instance{ID: id, PrivateIPv4: "10.0.0.1", State: "running", Tags: tags}
}

func mustMatcher(t testing.TB, fs []ec2.Filter) *ec2.Matcher {
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
