package ec2

import (
	"strings"
	"testing"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
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
			if _, ok := fd.Code.Info(); !ok {
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
		if fs.Has(CodeFilterKeyOrKVPair) || fs.Has(CodeWrongType) {
			// A filter that is malformed or could not be decoded is an error already.
			return
		}
		m, err := u.Spec.Matcher()
		if err != nil {
			t.Fatalf("well-formed filters do not compile: %v", err)
		}
		if _, err := EC2Filters(u.Spec.Filters); err != nil {
			t.Fatalf("well-formed filters do not convert: %v", err)
		}
		if m.SelectsNothing() != fs.Has(CodeFilterConflict) {
			t.Fatalf("matcher SelectsNothing = %v but conflict finding = %v", m.SelectsNothing(), fs.Has(CodeFilterConflict))
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
