package ec2

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"pgregory.net/rapid"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// bigUpstreamJSON builds an Upstream whose n filters carry every kind of cross-filter problem
// (conflicting values, duplicates, case collisions, redundant keys) and, every seventh, an
// unknown field: about 16 bytes per filter, so 64,000 filters make a 1 MB object.
func bigUpstreamJSON(t testing.TB, n int) []byte {
	t.Helper()
	filters := make([]any, n)
	for i := range filters {
		switch i % 7 {
		case 0:
			filters[i] = map[string]any{"kvPair": map[string]any{"key": "env", "value": fmt.Sprint(i)}}
		case 1:
			filters[i] = map[string]any{"key": "env"}
		case 2:
			filters[i] = map[string]any{"key": fmt.Sprintf("K%d", i%100)}
		case 3:
			filters[i] = map[string]any{"key": fmt.Sprintf("k%d", i%100)}
		case 4:
			filters[i] = map[string]any{"key": "dup"}
		case 5:
			filters[i] = map[string]any{"key": fmt.Sprintf("u%d", i)}
		default:
			filters[i] = map[string]any{"key": "x", "vaule": "y"}
		}
	}
	b, err := json.Marshal(map[string]any{
		"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
		"metadata": map[string]any{"name": "big", "namespace": "team-a"},
		"spec":     map[string]any{"awsEc2": map[string]any{"region": "us-east-1", "filters": filters}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// maxAnswerBytes bounds the rendering of all findings of one check.
const maxAnswerBytes = (MaxReportedErrors + MaxReportedWarnings + 2) * (3*MaxFindingMessageLength + 64)

func answerBytes(fs Findings) int {
	n := 0
	for _, f := range fs {
		n += len(f.String())
		n += len(f.FieldError().Error())
	}
	return n
}

func TestLargeObjectRejectedWithBoundedAnswer(t *testing.T) {
	for _, n := range []int{51, 1_000, 64_000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			doc := bigUpstreamJSON(t, n)
			if n == 64_000 && len(doc) < 1<<20 {
				t.Fatalf("the 64k object is %d bytes, want at least 1 MiB", len(doc))
			}
			u, err := DecodeJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			fs := u.Check()
			if !hasFinding(fs, codes.TooManyFilters, "spec.awsEc2.filters") {
				t.Errorf("no EC2G105 at spec.awsEc2.filters in\n%s", dump(fs))
			}
			if !fs.HasErrors() {
				t.Error("not rejected")
			}
			if max := MaxReportedErrors + MaxReportedWarnings + 1; len(fs) > max {
				t.Errorf("%d findings, want at most %d", len(fs), max)
			}
			if b := answerBytes(fs); b > maxAnswerBytes {
				t.Errorf("findings render to %d bytes, want at most %d", b, maxAnswerBytes)
			}
			errs, warns := u.Validate()
			if len(errs) > MaxReportedErrors+1 || len(warns) > MaxReportedWarnings+1 {
				t.Errorf("Validate: %d errors, %d warnings", len(errs), len(warns))
			}
			// The unknown fields (one filter in seven) are more than the findings shown: the rest
			// are counted in one EC2G007 finding.
			if last := fs[len(fs)-1]; n >= 1_000 && (last.Code != codes.MoreFindings || !strings.Contains(last.Message, "EC2G004")) {
				t.Fatalf("last finding = %s [%s], want EC2G007 counting EC2G004", last, last.Severity)
			}
			// Beyond the AWS limit no per-filter or cross-filter rule runs.
			for _, c := range []Code{codes.FilterConflict, codes.FilterDuplicate, codes.FilterKeyCaseCollision, codes.FilterRedundantKey} {
				if fs.Has(c) {
					t.Errorf("cross-filter rule %s ran on %d filters", c, n)
				}
			}
		})
	}
}

func TestFindingsCapped(t *testing.T) {
	var filters strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&filters, "- key: %s%d\n", strings.Repeat("k", 129), i) // 30 × EC2G103 (error)
	}
	for i := 0; i < 15; i++ {
		fmt.Fprintf(&filters, "- key: \" w%d\"\n", i) // 15 × EC2G111 (warning)
	}
	u, err := DecodeJSON(upstreamDoc(t, ShapeV1, "region: us-east-1\nsecretRef: {name: s, namespace: default}\nfilters:\n"+filters.String()))
	if err != nil {
		t.Fatal(err)
	}
	fs := u.Check()
	errs, warns := 0, 0
	for _, f := range fs[:len(fs)-1] {
		if f.Severity == SeverityError {
			errs++
		} else {
			warns++
		}
	}
	if errs != MaxReportedErrors || warns != MaxReportedWarnings {
		t.Errorf("kept %d errors and %d warnings, want %d and %d\n%s", errs, warns, MaxReportedErrors, MaxReportedWarnings, dump(fs))
	}
	last := fs[len(fs)-1]
	want := "and 15 more (10 errors, 5 warnings) not shown: EC2G103 ×10, EC2G111 ×5"
	if last.Code != codes.MoreFindings || last.Severity != SeverityError || !strings.Contains(last.Message, want) || last.Field != "spec.awsEc2" {
		t.Errorf("summary = %s [%s], want an error containing %q", last, last.Severity, want)
	}

	// Only warnings left out: the summary is a warning, and the Upstream is still accepted.
	filters.Reset()
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&filters, "- key: \" w%d\"\n", i)
	}
	u, err = DecodeJSON(upstreamDoc(t, ShapeV1, "region: us-east-1\nsecretRef: {name: s, namespace: default}\nfilters:\n"+filters.String()))
	if err != nil {
		t.Fatal(err)
	}
	fs = u.Check()
	if fs.HasErrors() || len(fs) != MaxReportedWarnings+1 || fs[len(fs)-1].Code != codes.MoreFindings {
		t.Errorf("warnings only: findings\n%s", dump(fs))
	}
}

func TestFindingTextsBounded(t *testing.T) {
	long := strings.Repeat("x", 100_000)
	doc := fmt.Sprintf(`{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"awsEc2":{"region":%q,"roleArn":%q,%q:1,"secretRef":{"name":%q,"namespace":%q},"filters":[{"key":%q},{"kvPair":{"key":"a","value":%q}}]}}}`,
		long, long, long, long, long, long, long)
	u, err := DecodeJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	fs := u.Check()
	if len(fs) == 0 {
		t.Fatal("no findings")
	}
	for _, f := range fs {
		if len(f.Field) > MaxFindingMessageLength+4 || len(f.Message) > MaxFindingMessageLength+4 || len(f.Fix) > MaxFindingMessageLength+4 {
			t.Errorf("unbounded finding (%d/%d/%d bytes): %.200s", len(f.Field), len(f.Message), len(f.Fix), f)
		}
	}
	if b := answerBytes(fs); b > maxAnswerBytes {
		t.Errorf("findings render to %d bytes", b)
	}
}

func TestCheckContextStopsWhenDone(t *testing.T) {
	u, err := DecodeJSON(upstreamDoc(t, ShapeV1, validBlock))
	if err != nil {
		t.Fatal(err)
	}
	if fs := u.CheckContext(context.Background()); len(fs) != 0 {
		t.Fatalf("valid upstream: %s", dump(fs))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fs := u.CheckContext(ctx)
	if len(fs) != 1 || fs[0].Code != codes.CheckInterrupted || fs[0].Severity != SeverityError || fs[0].Field != "spec.awsEc2" {
		t.Fatalf("cancelled check: findings\n%s", dump(fs))
	}
	if !strings.Contains(fs[0].Message, context.Canceled.Error()) {
		t.Errorf("message %q does not say why", fs[0].Message)
	}
	errs, _ := u.ValidateContext(ctx)
	if len(errs) != 1 {
		t.Errorf("ValidateContext: %v", errs)
	}

	// Decoding problems found before the deadline are still reported, and the interruption too,
	// even when the errors shown are already at their bound.
	big, err := DecodeJSON(bigUpstreamJSON(t, 1_000))
	if err != nil {
		t.Fatal(err)
	}
	fs = big.CheckContext(ctx)
	if !fs.Has(codes.UnknownField) || fs[len(fs)-1].Code != codes.CheckInterrupted {
		t.Errorf("cancelled check of a large object:\n%s", dump(fs))
	}
}

// ---- the cross-filter rules against straightforward quadratic references ----

func refDuplicates(filters []Filter, p *field.Path) Findings {
	var out Findings
	for j := range filters {
		if !filters[j].wellFormed() {
			continue
		}
		for i := 0; i < j; i++ {
			if filters[i].wellFormed() && filters[i].equal(filters[j]) {
				out = append(out, newFinding(codes.FilterDuplicate, p.Index(j), field.ErrorTypeDuplicate, field.OmitValueType{}, i, filters[j]))
				break
			}
		}
	}
	return out
}

func refConflicts(filters []Filter, p *field.Path) Findings {
	var out Findings
	for j, fj := range filters {
		if !fj.wellFormed() || !fj.IsKV() {
			continue
		}
		for i := 0; i < j; i++ {
			fi := filters[i]
			if fi.wellFormed() && fi.IsKV() && fi.KVPair.Key == fj.KVPair.Key && fi.KVPair.Value != fj.KVPair.Value {
				out = append(out, newFinding(codes.FilterConflict, p.Index(j).Child("kvPair", "value"), field.ErrorTypeInvalid, truncate(fj.KVPair.Value, 64),
					quoteShort(fj.KVPair.Key), quoteShort(fj.KVPair.Value), quoteShort(fi.KVPair.Value), i))
				break
			}
		}
	}
	return out
}

func refRedundantKeys(filters []Filter, p *field.Path) Findings {
	var out Findings
	seen := map[string]bool{}
	for i, f := range filters {
		if !f.wellFormed() || f.IsKV() || seen[*f.Key] {
			continue
		}
		seen[*f.Key] = true
		for j, g := range filters {
			if g.wellFormed() && g.IsKV() && g.KVPair.Key == *f.Key {
				out = append(out, newFinding(codes.FilterRedundantKey, p.Index(i).Child("key"), field.ErrorTypeDuplicate, field.OmitValueType{}, quoteShort(*f.Key), j, g))
				break
			}
		}
	}
	return out
}

func refKeyCase(filters []Filter, p *field.Path) Findings {
	var out Findings
	for j, fj := range filters {
		if !fj.wellFormed() {
			continue
		}
		kj := fj.TagKey()
		for i := 0; i < j; i++ {
			fi := filters[i]
			if !fi.wellFormed() {
				continue
			}
			ki := fi.TagKey()
			if ki != kj && strings.ToLower(ki) == strings.ToLower(kj) {
				out = append(out, newFinding(codes.FilterKeyCaseCollision, p.Index(j), field.ErrorTypeInvalid, field.OmitValueType{}, quoteShort(kj), quoteShort(ki), i))
				break
			}
		}
	}
	return out
}

// crossFilterCase draws filters from a tiny alphabet so that equal keys, equal values, case
// variants and malformed filters are all common.
func crossFilterCase(t *rapid.T) []Filter {
	str := rapid.SampledFrom([]string{"a", "A", "b", "B", "é", "É", ""})
	n := rapid.IntRange(0, 12).Draw(t, "n")
	out := make([]Filter, n)
	for i := range out {
		switch rapid.IntRange(0, 4).Draw(t, "kind") {
		case 0, 1:
			out[i] = KeyFilter(str.Draw(t, "key"))
		case 2, 3:
			out[i] = KVFilter(str.Draw(t, "key"), str.Draw(t, "value"))
		default:
			k := str.Draw(t, "key")
			out[i] = Filter{Key: &k, KVPair: &KVPair{Key: k}} // malformed
		}
	}
	return out
}

func TestPropertyCrossFilterRulesMatchReference(t *testing.T) {
	p := field.NewPath("spec", "awsEc2", "filters")
	rules := []struct {
		name      string
		got, want func([]Filter, *field.Path) Findings
	}{
		{"duplicates", checkFilterDuplicates, refDuplicates},
		{"conflicts", checkFilterConflicts, refConflicts},
		{"redundant", checkFilterRedundantKeys, refRedundantKeys},
		{"keycase", checkFilterKeyCase, refKeyCase},
	}
	rapid.Check(t, func(t *rapid.T) {
		filters := crossFilterCase(t)
		for _, r := range rules {
			if got, want := fmt.Sprintf("%#v", r.got(filters, p)), fmt.Sprintf("%#v", r.want(filters, p)); got != want {
				t.Fatalf("%s on %v:\n got %s\nwant %s", r.name, filters, got, want)
			}
		}
	})
}

// BenchmarkCrossFilterRules runs the four cross-filter rules on n filters (the EC2G105 gate
// bypassed) to show that they grow linearly: compare ns/op between sizes, and with the quadratic
// references (the rules as they were written before) in the same run.
func BenchmarkCrossFilterRules(b *testing.B) {
	for _, n := range []int{1_000, 4_000, 16_000, 64_000} {
		u, err := DecodeJSON(bigUpstreamJSON(b, n))
		if err != nil {
			b.Fatal(err)
		}
		fs, p := u.Spec.Filters, u.Path().Child("filters")
		b.Run(fmt.Sprintf("linear/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				checkFilterDuplicates(fs, p)
				checkFilterConflicts(fs, p)
				checkFilterRedundantKeys(fs, p)
				checkFilterKeyCase(fs, p)
			}
		})
		if n > 16_000 {
			continue // the quadratic reference takes minutes there
		}
		b.Run(fmt.Sprintf("quadratic-reference/%d", n), func(b *testing.B) {
			for b.Loop() {
				refDuplicates(fs, p)
				refConflicts(fs, p)
				refRedundantKeys(fs, p)
				refKeyCase(fs, p)
			}
		})
	}
}

// BenchmarkLargeObject decodes and checks an Upstream of n filters, as the webhook and the
// discoverer do; the decode alone is the baseline measured beside it.
func BenchmarkLargeObject(b *testing.B) {
	for _, n := range []int{1_000, 4_000, 16_000, 64_000} {
		doc := bigUpstreamJSON(b, n)
		b.Run(fmt.Sprintf("decode/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := DecodeJSON(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("decode+check/%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				u, err := DecodeJSON(doc)
				if err != nil {
					b.Fatal(err)
				}
				if fs := u.Check(); !fs.HasErrors() {
					b.Fatal("accepted")
				}
			}
		})
	}
}
