package ec2

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// FuzzDecodeValidate decodes arbitrary YAML/JSON as an Upstream and checks the invariants every caller
// relies on: no panic; every finding carries a documented code at the start of its message and its
// field error; well-formed filters compile; the conflict rule and the matcher agree; tags built from
// the filters match them. Seeds: testdata/fuzz/FuzzDecodeValidate.
func FuzzDecodeValidate(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","spec":{"awsEc2":{"region":"us-east-1","port":"80","filters":"x"}}}`))
	f.Add([]byte("apiVersion: gloo.solo.io/v1\nkind: Upstream\nspec:\n  upstreamSpec:\n    awsEc2:\n      region: us-east-1\n      filters:\n      - key: a\n        kvPair: {key: a, value: b}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeYAML(data)
		if j, jerr := yaml.YAMLToJSON(data); jerr == nil {
			// The webhook's filter decodes the JSON and asks IsEC2: that must agree with DecodeJSON.
			_, derr := DecodeJSON(j)
			var obj map[string]any
			isEC2 := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &obj) == nil && IsEC2(obj)
			if isEC2 != (derr == nil) {
				t.Fatalf("decode + IsEC2 = %v but DecodeJSON err = %v for %q", isEC2, derr, j)
			}
			if obj != nil {
				_, oerr := FromObject(obj)
				if got := IsEC2(obj); got != (oerr == nil) {
					t.Fatalf("IsEC2 = %v but FromObject err = %v for %q", got, oerr, j)
				}
			}
		}
		if err != nil {
			if u != nil {
				t.Fatal("non-nil upstream with error")
			}
			return
		}
		if u.Shape != ShapeV1 && u.Shape != ShapeLegacy {
			t.Fatalf("shape %v", u.Shape)
		}
		fs := u.Check()
		for _, fd := range fs {
			if _, ok := codes.Lookup(fd.Code); !ok {
				t.Fatalf("undocumented code %q", fd.Code)
			}
			if !strings.HasPrefix(fd.String(), string(fd.Code)+" ") {
				t.Fatalf("finding %q does not start with its code", fd)
			}
			fe := fd.FieldError()
			if c, ok := CodeOf(fe); !ok || c != fd.Code {
				t.Fatalf("field error %q: CodeOf = %q", fe.Error(), c)
			}
			_ = fe.Error()
		}
		errs, warns := u.Validate()
		if len(errs)+len(warns) != len(fs) {
			t.Fatalf("Validate lost findings")
		}
		// Bounded answer, whatever the input.
		if len(errs) > MaxReportedErrors+1 || len(warns) > MaxReportedWarnings+1 {
			t.Fatalf("%d errors and %d warnings", len(errs), len(warns))
		}
		size := 0
		for _, fd := range fs {
			size += len(fd.String())
		}
		if size > (MaxReportedErrors+MaxReportedWarnings+1)*(3*MaxFindingMessageLength+64) {
			t.Fatalf("findings render to %d bytes", size)
		}
		// A check whose context has ended stops with EC2G008 and never accepts.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if cfs := u.CheckContext(ctx); !cfs.HasErrors() || cfs[len(cfs)-1].Code != codes.CheckInterrupted {
			t.Fatalf("cancelled check: %v", cfs)
		}
		if fs.Has(codes.FilterKeyOrKVPair) || fs.Has(codes.WrongType) || fs.Has(codes.TooManyFilters) || fs.Has(codes.MoreFindings) {
			// A filter that is malformed or could not be decoded is an error already; beyond the
			// filter limit or the reported findings, the filter rules' findings are not all shown.
			return
		}
		m, err := u.Spec.Matcher()
		if err != nil {
			t.Fatalf("well-formed filters do not compile: %v", err)
		}
		if _, err := EC2Filters(u.Spec.Filters); err != nil {
			t.Fatalf("well-formed filters do not convert: %v", err)
		}
		if m.SelectsNothing() != fs.Has(codes.FilterConflict) {
			t.Fatalf("matcher SelectsNothing = %v but conflict finding = %v", m.SelectsNothing(), fs.Has(codes.FilterConflict))
		}
		if !m.SelectsNothing() {
			tags := map[string]string{}
			for _, fl := range u.Spec.Filters {
				if fl.IsKV() {
					tags[fl.KVPair.Key] = fl.KVPair.Value
				} else if _, ok := tags[*fl.Key]; !ok {
					tags[*fl.Key] = "any"
				}
			}
			if !m.Match(tags) {
				t.Fatalf("tags built from the filters do not match: %q %v", tags, u.Spec.Filters)
			}
		}
	})
}

// FuzzParseSecret checks that no secret access key, session token or malformed access key id appears
// in any finding or rendering of the credentials. Seeds: testdata/fuzz/FuzzParseSecret.
func FuzzParseSecret(f *testing.F) {
	f.Add(exampleKeyID, exampleSecret, "", false)
	f.Add(exampleSecret, exampleKeyID, exampleToken, true)
	f.Add("ASIAIOSFODNN7EXAMPLE", exampleSecret+"\n", "", true)
	f.Fuzz(func(t *testing.T, id, sk, tok string, withToken bool) {
		data := map[string]string{SecretKeyAccessKeyID: id, SecretKeySecretAccessKey: sk}
		if withToken {
			data[SecretKeySessionToken] = tok
		}
		_, fs := ParseSecret(secretWith(data))
		for _, fd := range fs {
			if !strings.HasPrefix(fd.String(), string(fd.Code)+" ") {
				t.Fatalf("finding %q does not start with its code", fd)
			}
		}
		assertNoSecretLeak(t, data)
	})
}

// FuzzMatch checks the filter matcher on arbitrary filters and tags: it agrees with a reference of
// EC2's own filter evaluation (the filters converted to DescribeInstances filters), and its
// lowercased-key match agrees with Gloo's plugin over every order of the tag list. Filters are
// lines `key` or `key=value`, tags lines `key=value`. Seeds: testdata/fuzz/FuzzMatch.
func FuzzMatch(f *testing.F) {
	f.Add("gloo-id\ngloo-tag=group1", "gloo-id=1\ngloo-tag=group1\nName=web")
	f.Add("Name=web\nname=db", "Name=web\nname=db")
	f.Add("env=a*", "env=abc\nEnv=a*")
	f.Fuzz(func(t *testing.T, filterLines, tagLines string) {
		var filters []Filter
		for _, line := range strings.Split(filterLines, "\n") {
			if k, v, kv := strings.Cut(line, "="); kv {
				filters = append(filters, KVFilter(k, v))
			} else {
				filters = append(filters, KeyFilter(line))
			}
		}
		tags := map[string]string{}
		for _, line := range strings.Split(tagLines, "\n") {
			k, v, _ := strings.Cut(line, "=")
			tags[k] = v
		}
		if len(filters) > MaxFilters || len(tags) > 6 {
			t.Skip("larger than an Upstream (filters) or than the permutation reference handles (tags)")
		}
		if !utf8.ValidString(filterLines) || !utf8.ValidString(tagLines) {
			// EC2 tags and filters are UTF-8 (the API rejects anything else); the reference compares
			// runes, so it would take an invalid byte for U+FFFD.
			t.Skip("not UTF-8: no EC2 tag or filter can hold it")
		}
		m, err := NewMatcher(filters)
		if err != nil {
			t.Fatal(err)
		}
		api, err := EC2Filters(filters)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Match(tags), refEC2Eval(t, api, tags); got != want {
			t.Fatalf("Match = %v, EC2 reference = %v\nfilters %v\ntags %q", got, want, filters, tags)
		}
		if got, want := m.MatchLowercasedKeys(tags), glooMayMatch(filters, tags); got != want {
			t.Fatalf("MatchLowercasedKeys = %v, Gloo over every tag order = %v\nfilters %v\ntags %q", got, want, filters, tags)
		}
		if m.SelectsEverything() && !m.Match(tags) {
			t.Fatalf("a matcher that selects everything rejected %q", tags)
		}
		if m.SelectsNothing() && (m.Match(tags) || m.MatchLowercasedKeys(tags)) {
			t.Fatalf("a matcher that selects nothing matched %q", tags)
		}
	})
}
