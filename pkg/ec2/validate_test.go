package ec2

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// upstreamDoc wraps an awsEc2 block (YAML) into a full Upstream in the given shape, as JSON.
func upstreamDoc(t testing.TB, shape Shape, awsEc2 string) []byte {
	t.Helper()
	var block any
	if err := yaml.Unmarshal([]byte(awsEc2), &block); err != nil {
		t.Fatalf("test awsEc2 block: %v", err)
	}
	spec := map[string]any{}
	if shape == ShapeLegacy {
		spec["upstreamSpec"] = map[string]any{"awsEc2": block}
	} else {
		spec["awsEc2"] = block
	}
	obj := map[string]any{
		"apiVersion": "gloo.solo.io/v1",
		"kind":       "Upstream",
		"metadata":   map[string]any{"name": "up", "namespace": "gloo-system"},
		"spec":       spec,
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const validBlock = `
region: us-east-1
secretRef: {name: gloo-tag-group1, namespace: default}
filters:
- key: gloo-id
- kvPair: {key: gloo-tag, value: group1}
- kvPair: {key: version, value: v1.2.3}
`

// want is a code expected at a field relative to the awsEc2 block ("" = the block itself; a leading
// "/" = an absolute path).
type want struct {
	code  Code
	field string
}

func (w want) path(shape Shape) string {
	switch {
	case strings.HasPrefix(w.field, "/"):
		return w.field[1:]
	case w.field == "":
		return shape.Path().String()
	case strings.HasPrefix(w.field, "["):
		return shape.Path().String() + w.field
	}
	return shape.Path().String() + "." + w.field
}

func TestValidateRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("k", n) }
	filters51 := "region: us-east-1\nsecretRef: {name: s, namespace: default}\nfilters:\n"
	filters50 := filters51
	for i := 0; i < 51; i++ {
		line := fmt.Sprintf("- key: k%d\n", i)
		filters51 += line
		if i < 50 {
			filters50 += line
		}
	}
	base := "region: us-east-1\nsecretRef: {name: s, namespace: default}\n"
	withFilters := func(f string) string { return base + "filters:\n" + f }

	cases := []struct {
		name  string
		block string
		// errs: exactly the error codes expected (at their fields); warns: warnings that must be present.
		errs  []want
		warns []want
		// noWarn: warnings that must not be present.
		noWarn []Code
	}{
		{name: "valid tutorial", block: validBlock},
		{name: "valid full", block: base + `roleArn: arn:aws:iam::123456789012:role/team/gloo-reader
port: 8080
publicIp: true
filters: [{key: a}]`},
		{name: "valid port 65535 and 1", block: withFilters("- key: a\n") + "port: 65535\n"},
		{name: "valid cn partition role", block: `region: cn-north-1
secretRef: {name: s, namespace: default}
roleArn: arn:aws-cn:iam::123456789012:role/r
filters: [{key: a}]`},
		{name: "valid gov region", block: "region: us-gov-west-1\nsecretRef: {name: s, namespace: default}\nfilters: [{key: a}]"},
		{name: "valid literal wildcard chars in value", block: withFilters(`- kvPair: {key: a, value: "*x?\\y"}` + "\n")},
		{name: "valid key 128 value 256", block: withFilters(fmt.Sprintf("- kvPair: {key: %s, value: %s}\n", long(128), strings.Repeat("v", 256)))},
		{name: "valid 50 filters", block: filters50},
		{name: "valid unicode key 128 runes", block: withFilters(fmt.Sprintf("- key: %s\n", strings.Repeat("é", 128)))},
		{name: "valid no secretRef (pod identity)", block: "region: us-east-1\nfilters: [{key: a}]"},

		{name: "EC2G001 port string", block: withFilters("- key: a\n") + `port: "80"`, errs: []want{{codes.WrongType, "port"}}},
		{name: "EC2G001 filters string", block: base + "filters: x", errs: []want{{codes.WrongType, "filters"}}},
		{name: "EC2G001 publicIp string", block: withFilters("- key: a\n") + `publicIp: "yes"`, errs: []want{{codes.WrongType, "publicIp"}}},
		{name: "EC2G001 region number", block: "region: 5\nfilters: [{key: a}]", errs: []want{{codes.WrongType, "region"}}},
		{name: "EC2G001 filter item string", block: withFilters("- a\n"), errs: []want{{codes.WrongType, "filters[0]"}}},
		{name: "EC2G001 null filter item", block: withFilters("- key: a\n-\n"), errs: []want{{codes.WrongType, "filters[1]"}}},
		{name: "EC2G001 kvPair string", block: withFilters("- kvPair: a=b\n"), errs: []want{{codes.WrongType, "filters[0].kvPair"}}},
		{name: "EC2G001 key number", block: withFilters("- key: 5\n"), errs: []want{{codes.WrongType, "filters[0].key"}}},
		{name: "EC2G001 secretRef string", block: "region: us-east-1\nsecretRef: s\nfilters: [{key: a}]", errs: []want{{codes.WrongType, "secretRef"}}},
		{name: "EC2G001 awsEc2 list", block: "[1]", errs: []want{{codes.WrongType, ""}}},
		{name: "EC2G004 misspelt filters", block: base + "fitlers: [{key: a}]", errs: []want{{codes.UnknownField, "fitlers"}}, warns: []want{{codes.NoFilters, "filters"}}},
		{name: "EC2G004 unknown in kvPair", block: withFilters("- kvPair: {key: a, vaule: b}\n"), errs: []want{{codes.UnknownField, "filters[0].kvPair.vaule"}}, warns: []want{{codes.FilterEmptyValue, "filters[0].kvPair.value"}}},
		{name: "EC2G004 unknown in secretRef", block: "region: us-east-1\nsecretRef: {name: s, namespace: default, nmespace: x}\nfilters: [{key: a}]", errs: []want{{codes.UnknownField, "secretRef.nmespace"}}},
		{name: "EC2G004 unknown in filter", block: withFilters("- key: a\n  value: b\n"), errs: []want{{codes.UnknownField, "filters[0].value"}}},
		{name: "valid proto names", block: "region: us-east-1\nsecret_ref: {name: s, namespace: default}\nrole_arn: arn:aws:iam::123456789012:role/r\npublic_ip: true\nfilters: [{key: a}, {kv_pair: {key: b, value: c}}]"},
		{name: "EC2G005 secretRef and secret_ref differ", block: withFilters("- key: a\n") + "secret_ref: {name: other, namespace: default}", errs: []want{{codes.FieldSpeltTwiceDiffer, "secret_ref"}}},
		{name: "EC2G005 kvPair and kv_pair differ", block: withFilters("- kvPair: {key: a, value: b}\n  kv_pair: {key: a, value: c}\n"), errs: []want{{codes.FieldSpeltTwiceDiffer, "filters[0].kv_pair"}}},
		{name: "EC2G005 roleArn and role_arn differ", block: withFilters("- key: a\n") + "roleArn: arn:aws:iam::123456789012:role/r\nrole_arn: arn:aws:iam::123456789012:role/admin", errs: []want{{codes.FieldSpeltTwiceDiffer, "role_arn"}}},
		{name: "EC2G006 publicIp and public_ip same", block: withFilters("- key: a\n") + "publicIp: true\npublic_ip: true", warns: []want{{codes.FieldSpeltTwiceSame, "public_ip"}}},

		{name: "EC2G101 both", block: withFilters("- key: a\n  kvPair: {key: a, value: b}\n"), errs: []want{{codes.FilterKeyOrKVPair, "filters[0]"}}},
		{name: "EC2G101 neither", block: withFilters("- key: a\n- {}\n"), errs: []want{{codes.FilterKeyOrKVPair, "filters[1]"}}},
		{name: "EC2G102 empty key", block: withFilters(`- key: ""` + "\n"), errs: []want{{codes.FilterKeyEmpty, "filters[0].key"}}},
		{name: "EC2G102 empty kvPair key", block: withFilters(`- kvPair: {key: "", value: v}` + "\n"), errs: []want{{codes.FilterKeyEmpty, "filters[0].kvPair.key"}}},
		{name: "EC2G103 key too long", block: withFilters(fmt.Sprintf("- key: %s\n", long(129))), errs: []want{{codes.FilterKeyTooLong, "filters[0].key"}}},
		{name: "EC2G103 kvPair key too long", block: withFilters(fmt.Sprintf("- kvPair: {key: %s, value: v}\n", long(129))), errs: []want{{codes.FilterKeyTooLong, "filters[0].kvPair.key"}}},
		{name: "EC2G104 value too long", block: withFilters(fmt.Sprintf("- kvPair: {key: k, value: %s}\n", strings.Repeat("v", 257))), errs: []want{{codes.FilterValueTooLong, "filters[0].kvPair.value"}}},
		{name: "EC2G105 51 filters", block: filters51, errs: []want{{codes.TooManyFilters, "filters"}}},
		{name: "EC2G106 conflict", block: withFilters("- kvPair: {key: env, value: prod}\n- kvPair: {key: env, value: dev}\n"), errs: []want{{codes.FilterConflict, "filters[1].kvPair.value"}}},
		{name: "EC2G107 duplicate", block: withFilters("- kvPair: {key: env, value: prod}\n- key: a\n- kvPair: {key: env, value: prod}\n"), warns: []want{{codes.FilterDuplicate, "filters[2]"}}},
		{name: "EC2G107 duplicate key", block: withFilters("- key: a\n- key: a\n"), warns: []want{{codes.FilterDuplicate, "filters[1]"}}},
		{name: "EC2G108 redundant key", block: withFilters("- key: env\n- kvPair: {key: env, value: prod}\n"), warns: []want{{codes.FilterRedundantKey, "filters[0].key"}}},
		{name: "EC2G109 empty value", block: withFilters(`- kvPair: {key: env, value: ""}` + "\n"), warns: []want{{codes.FilterEmptyValue, "filters[0].kvPair.value"}}},
		{name: "EC2G110 case collision", block: withFilters("- key: Env\n- kvPair: {key: env, value: prod}\n"), warns: []want{{codes.FilterKeyCaseCollision, "filters[1]"}}, noWarn: []Code{codes.FilterRedundantKey}},
		{name: "EC2G111 whitespace value", block: withFilters(`- kvPair: {key: env, value: "prod "}` + "\n"), warns: []want{{codes.FilterWhitespace, "filters[0].kvPair.value"}}},
		{name: "EC2G111 whitespace key", block: withFilters(`- key: " env"` + "\n"), warns: []want{{codes.FilterWhitespace, "filters[0].key"}}},
		{name: "EC2G112 no filters", block: base, warns: []want{{codes.NoFilters, "filters"}}},
		{name: "EC2G112 empty filter list", block: base + "filters: []", warns: []want{{codes.NoFilters, "filters"}}},
		{name: "EC2G113 wildcard key", block: withFilters(`- key: "team*"` + "\n"), warns: []want{{codes.FilterKeyWildcard, "filters[0].key"}}},

		{name: "EC2G201 region missing", block: "filters: [{key: a}]", errs: []want{{codes.RegionRequired, "region"}}},
		{name: "EC2G201 region empty", block: `region: ""` + "\nfilters: [{key: a}]", errs: []want{{codes.RegionRequired, "region"}}},
		{name: "EC2G202 missing dash", block: "region: us-east1\nfilters: [{key: a}]", errs: []want{{codes.RegionInvalid, "region"}}},
		{name: "EC2G202 availability zone", block: "region: us-east-1a\nfilters: [{key: a}]", errs: []want{{codes.RegionInvalid, "region"}}},
		{name: "EC2G202 upper case", block: "region: US-EAST-1\nfilters: [{key: a}]", errs: []want{{codes.RegionInvalid, "region"}}},
		{name: "EC2G202 pseudo region", block: "region: aws-global\nfilters: [{key: a}]", errs: []want{{codes.RegionInvalid, "region"}}},
		{name: "EC2G202 nonsense", block: "region: mars-1\nfilters: [{key: a}]", errs: []want{{codes.RegionInvalid, "region"}}},
		{name: "EC2G203 unknown region", block: "region: us-east-9\nfilters: [{key: a}]", warns: []want{{codes.RegionUnknown, "region"}}},
		{name: "EC2G204 not an ARN", block: withFilters("- key: a\n") + "roleArn: my-role", errs: []want{{codes.RoleARNInvalid, "roleArn"}}},
		{name: "EC2G205 user ARN", block: withFilters("- key: a\n") + "roleArn: arn:aws:iam::123456789012:user/bob", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G205 assumed role", block: withFilters("- key: a\n") + "roleArn: arn:aws:sts::123456789012:assumed-role/r/s", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G205 region in ARN", block: withFilters("- key: a\n") + "roleArn: arn:aws:iam:us-east-1:123456789012:role/r", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G205 bad account", block: withFilters("- key: a\n") + "roleArn: arn:aws:iam::12345:role/r", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G205 s3 ARN", block: withFilters("- key: a\n") + "roleArn: arn:aws:s3:::bucket", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G205 bad role name", block: withFilters("- key: a\n") + "roleArn: arn:aws:iam::123456789012:role/bad name", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G205 unknown partition", block: withFilters("- key: a\n") + "roleArn: arn:aws-moon:iam::123456789012:role/r", errs: []want{{codes.RoleARNNotRole, "roleArn"}}},
		{name: "EC2G206 partition mismatch", block: withFilters("- key: a\n") + "roleArn: arn:aws-cn:iam::123456789012:role/r", errs: []want{{codes.RoleARNPartition, "roleArn"}}},
		{name: "EC2G207 port too big", block: withFilters("- key: a\n") + "port: 70000", errs: []want{{codes.PortRange, "port"}}},
		{name: "EC2G207 port negative", block: withFilters("- key: a\n") + "port: -1", errs: []want{{codes.PortRange, "port"}}},
		{name: "EC2G207 port fraction", block: withFilters("- key: a\n") + "port: 80.5", errs: []want{{codes.PortRange, "port"}}},
		{name: "EC2G207 port huge", block: withFilters("- key: a\n") + "port: 99999999999", errs: []want{{codes.PortRange, "port"}}},
		{name: "EC2G208 port zero", block: withFilters("- key: a\n") + "port: 0", warns: []want{{codes.PortZero, "port"}}},
		{name: "EC2G209 secretRef without name", block: "region: us-east-1\nsecretRef: {namespace: default}\nfilters: [{key: a}]", errs: []want{{codes.SecretRefNameRequired, "secretRef.name"}}},
		{name: "EC2G210 secretRef without namespace", block: "region: us-east-1\nsecretRef: {name: s}\nfilters: [{key: a}]", warns: []want{{codes.SecretRefNamespaceDefaulted, "secretRef.namespace"}}},
		{name: "EC2G211 bad secret name", block: "region: us-east-1\nsecretRef: {name: Bad_Name, namespace: default}\nfilters: [{key: a}]", errs: []want{{codes.SecretRefInvalidName, "secretRef.name"}}},
		{name: "EC2G211 bad namespace", block: "region: us-east-1\nsecretRef: {name: s, namespace: bad.ns}\nfilters: [{key: a}]", errs: []want{{codes.SecretRefInvalidName, "secretRef.namespace"}}},
	}
	for _, shape := range []Shape{ShapeV1, ShapeLegacy} {
		for _, tc := range cases {
			t.Run(shape.String()+"/"+tc.name, func(t *testing.T) {
				u, err := DecodeJSON(upstreamDoc(t, shape, tc.block))
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if u.Shape != shape {
					t.Fatalf("shape = %v, want %v", u.Shape, shape)
				}
				fs := u.Check()
				errs, warns := u.Validate()
				if len(errs) != len(fs)-len(warns) {
					t.Fatalf("Validate split %d findings into %d errors and %d warnings", len(fs), len(errs), len(warns))
				}
				var gotErrs []want
				for _, f := range fs {
					if !strings.HasPrefix(f.String(), string(f.Code)+" "+f.Field+": ") {
						t.Errorf("finding %q does not start with code and field", f)
					}
					if f.Severity == SeverityError {
						gotErrs = append(gotErrs, want{f.Code, f.Field})
					}
				}
				var wantErrs []want
				for _, w := range tc.errs {
					wantErrs = append(wantErrs, want{w.code, w.path(shape)})
				}
				if fmt.Sprint(gotErrs) != fmt.Sprint(wantErrs) {
					t.Errorf("errors = %v, want %v\nall findings:\n%s", gotErrs, wantErrs, dump(fs))
				}
				for i, e := range errs {
					if code, ok := CodeOf(e); !ok || code != gotErrs[i].code {
						t.Errorf("field error %q: CodeOf = %q, %v", e.Error(), code, ok)
					}
					if e.Field != gotErrs[i].field {
						t.Errorf("field error %q has field %q", e.Error(), e.Field)
					}
				}
				for _, w := range tc.warns {
					if !hasFinding(warns, w.code, w.path(shape)) {
						t.Errorf("missing warning %s at %s\nall findings:\n%s", w.code, w.path(shape), dump(fs))
					}
				}
				for _, c := range tc.noWarn {
					if warns.Has(c) {
						t.Errorf("unexpected warning %s\nall findings:\n%s", c, dump(fs))
					}
				}
				if len(tc.errs) == 0 && len(tc.warns) == 0 && len(fs) != 0 {
					t.Errorf("valid case has findings:\n%s", dump(fs))
				}
			})
		}
	}
}

func hasFinding(fs Findings, c Code, path string) bool {
	for _, f := range fs {
		if f.Code == c && f.Field == path {
			return true
		}
	}
	return false
}

func dump(fs Findings) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  [%s] %s\n", f.Severity, f)
	}
	return b.String()
}

func TestValidateMessages(t *testing.T) {
	cases := []struct {
		block    string
		contains []string
	}{
		{"region: us-east1\nfilters: [{key: a}]", []string{"EC2G202 spec.awsEc2.region:", "did you mean us-east-1?"}},
		{"region: us-east-1a\nfilters: [{key: a}]", []string{"us-east-1a is an availability zone", "did you mean us-east-1"}},
		{"region: US-EAST-1\nfilters: [{key: a}]", []string{"did you mean us-east-1"}},
		{"region: aws-global\nfilters: [{key: a}]", []string{"global pseudo-region of partition aws", "e.g. us-east-1"}},
		{"region: us-east-1\nfitlers: [{key: a}]", []string{`unknown field "fitlers"`, `did you mean "filters"?`}},
		{"region: us-east-1\nsecret_reff: {name: s}\nfilters: [{key: a}]", []string{`unknown field "secret_reff"`, `did you mean "secret_ref"?`}},
		{"region: us-east-1\nsecretRef: {name: a, namespace: default}\nsecret_ref: {name: b, namespace: default}\nfilters: [{key: a}]", []string{"EC2G005 spec.awsEc2.secret_ref: secretRef is written twice, as secretRef and as secret_ref, with different values; Gloo silently uses secretRef"}},
		{"region: us-east-1\nroleArn: arn:aws:sts::123456789012:assumed-role/reader/sess\nfilters: [{key: a}]", []string{"arn:aws:iam::123456789012:role/reader"}},
		{"region: us-east-1\nport: \"80\"\nfilters: [{key: a}]", []string{"must be an integer, not the string \"80\"", "port: 80"}},
		{"region: us-east-1\nfilters:\n- key: a\n  kvPair: {key: a, value: b}", []string{"EC2G101 spec.awsEc2.filters[0]: exactly one of key or kvPair must be set"}},
		{"region: us-east-1\nfilters:\n- kvPair: {key: env, value: prod}\n- kvPair: {key: env, value: dev}", []string{`"env" is required to be "dev" here but "prod" in filters[0]`}},
	}
	for _, tc := range cases {
		u, err := DecodeJSON(upstreamDoc(t, ShapeV1, tc.block))
		if err != nil {
			t.Fatal(err)
		}
		all := dump(u.Check())
		for _, s := range tc.contains {
			if !strings.Contains(all, s) {
				t.Errorf("block %q: findings do not contain %q:\n%s", tc.block, s, all)
			}
		}
	}
}

func TestValidatePortTagAnnotation(t *testing.T) {
	for _, tc := range []struct {
		value string
		bad   bool
	}{{"port", false}, {"", true}, {"  ", true}, {strings.Repeat("p", 129), true}, {strings.Repeat("p", 128), false}} {
		u, err := DecodeJSON(upstreamDoc(t, ShapeV1, validBlock))
		if err != nil {
			t.Fatal(err)
		}
		u.Annotations = map[string]string{AnnotationPortTag: tc.value}
		errs, _ := u.Validate()
		got := len(errs) == 1 && errs[0].Field == "metadata.annotations[ec2guard.io/port-tag]"
		if got != tc.bad || (!tc.bad && len(errs) != 0) {
			t.Errorf("port-tag %q: errors %v, want bad=%v", tc.value, errs, tc.bad)
		}
	}
}

func TestValidateProgrammaticSpec(t *testing.T) {
	// A Spec built in Go (not decoded) is validated by the same rules.
	u := &Upstream{Namespace: "ns", Name: "n", Shape: ShapeV1, Spec: Spec{
		Region:  "eu-west-1",
		Port:    70000,
		Filters: []Filter{KeyFilter("a"), {}, KVFilter("b", "1"), KVFilter("b", "2")},
	}}
	fs := u.Check()
	for _, w := range []want{{codes.PortRange, "port"}, {codes.FilterKeyOrKVPair, "filters[1]"}, {codes.FilterConflict, "filters[3].kvPair.value"}} {
		if !hasFinding(fs, w.code, w.path(ShapeV1)) {
			t.Errorf("missing %v in\n%s", w, dump(fs))
		}
	}
}
