package ec2

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeTutorialBothShapesSameModel(t *testing.T) {
	legacy, err := DecodeYAML(readTestdata(t, "seed-upstream-demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := DecodeYAML(readTestdata(t, "seed-upstream-demo-v1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if legacy.Shape != ShapeLegacy || v1.Shape != ShapeV1 {
		t.Fatalf("shapes = %v, %v", legacy.Shape, v1.Shape)
	}
	want := Spec{
		Region:    "us-east-1",
		SecretRef: &SecretRef{Name: "gloo-tag-group1", Namespace: "default"},
		Filters:   []Filter{KeyFilter("gloo-id"), KVFilter("gloo-tag", "group1"), KVFilter("version", "v1.2.3")},
	}
	if !reflect.DeepEqual(legacy.Spec, want) {
		t.Errorf("legacy spec = %#v", legacy.Spec)
	}
	// The v1 file writes the defaults (publicIp: false, port: 80) explicitly.
	want.Port = 80
	if !reflect.DeepEqual(v1.Spec, want) {
		t.Errorf("v1 spec = %#v", v1.Spec)
	}
	if legacy.Spec.EffectivePort() != v1.Spec.EffectivePort() {
		t.Errorf("effective ports differ")
	}
	if legacy.Key() != "gloo-system/ec2-demo-upstream" || v1.Key() != legacy.Key() {
		t.Errorf("keys = %s, %s", legacy.Key(), v1.Key())
	}
	for _, u := range []*Upstream{legacy, v1} {
		if fs := u.Check(); len(fs) != 0 {
			t.Errorf("%s: tutorial upstream has findings:\n%s", u.Shape, dump(fs))
		}
		nn, ok := u.SecretName()
		if !ok || nn.String() != "default/gloo-tag-group1" {
			t.Errorf("SecretName = %v, %v", nn, ok)
		}
	}
}

func TestDecodeEntryPointsAgree(t *testing.T) {
	for _, name := range []string{"seed-upstream-demo.yaml", "seed-upstream-demo-v1.yaml"} {
		y := readTestdata(t, name)
		fromYAML, err := DecodeYAML(y)
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(y)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := DecodeJSON(j)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		fromUnstructured, err := FromUnstructured(u)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromYAML, fromJSON) || !reflect.DeepEqual(fromJSON, fromUnstructured) {
			t.Errorf("%s: decoders disagree:\n%#v\n%#v\n%#v", name, fromYAML, fromJSON, fromUnstructured)
		}
		if !IsEC2(u.Object) {
			t.Errorf("%s: IsEC2 = false", name)
		}
	}
}

func TestDecodeNotEC2(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want error
	}{
		{"static upstream", `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"s"},"spec":{"static":{"hosts":[{"addr":"1.2.3.4","port":80}]}}}`, ErrNotEC2},
		{"no spec", `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"s"}}`, ErrNotEC2},
		{"null awsEc2", `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","spec":{"awsEc2":null}}`, ErrNotEC2},
		{"legacy non-ec2", `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","spec":{"upstreamSpec":{"kube":{}}}}`, ErrNotEC2},
		{"upstreamSpec string", `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","spec":{"upstreamSpec":"x"}}`, ErrNotEC2},
		{"secret", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`, ErrNotUpstream},
		{"other group", `{"apiVersion":"example.com/v1","kind":"Upstream","spec":{"awsEc2":{}}}`, ErrNotUpstream},
		{"kind number", `{"apiVersion":"gloo.solo.io/v1","kind":5,"spec":{"awsEc2":{}}}`, ErrNotUpstream},
		{"null", `null`, ErrNotUpstream},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeJSON([]byte(tc.doc))
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			var obj map[string]any
			if err := json.Unmarshal([]byte(tc.doc), &obj); err == nil && IsEC2(obj) {
				t.Errorf("IsEC2 = true")
			}
		})
	}
	if _, err := DecodeJSON([]byte(`{`)); err == nil || errors.Is(err, ErrNotEC2) {
		t.Errorf("bad JSON: err = %v", err)
	}
	if _, err := FromUnstructured(nil); !errors.Is(err, ErrNotUpstream) {
		t.Errorf("nil unstructured: err = %v", err)
	}
}

func TestDecodeToleratesUnknownFields(t *testing.T) {
	doc := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream",
	  "metadata":{"name":"u","namespace":"ns","annotations":{"a":"b","ec2guard.io/port-tag":"port"},"resourceVersion":"1"},
	  "spec":{"healthChecks":[{"timeout":"1s"}],"discoveryMetadata":{},"sslConfig":null,
	          "awsEc2":{"region":"eu-west-1","filters":[{"key":"a"}]}},
	  "status":{"statuses":{}}}`
	u, err := DecodeJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if fs := u.Check(); len(fs) != 0 {
		t.Errorf("unknown fields outside awsEc2 produced findings:\n%s", dump(fs))
	}
	if v, ok := u.PortTag(); !ok || v != "port" {
		t.Errorf("PortTag = %q, %v", v, ok)
	}
	if u.Annotations["a"] != "b" || u.Namespace != "ns" || u.Name != "u" {
		t.Errorf("metadata = %#v", u)
	}
}

func TestDecodeBothShapes(t *testing.T) {
	same := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"awsEc2":{"region":"us-east-1","filters":[{"key":"a"}]},
	          "upstreamSpec":{"awsEc2":{"filters":[{"key":"a"}],"region":"us-east-1"}}}}`
	differ := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"awsEc2":{"region":"us-east-1","filters":[{"key":"a"}]},
	          "upstreamSpec":{"awsEc2":{"region":"us-west-2","filters":[{"key":"a"}]}}}}`
	u, err := DecodeJSON([]byte(same))
	if err != nil {
		t.Fatal(err)
	}
	errs, warns := u.Validate()
	if u.Shape != ShapeV1 || len(errs) != 0 || !hasFinding(warns, codes.BothShapesSame, "spec.upstreamSpec.awsEc2") {
		t.Errorf("same: shape %v errs %v warns\n%s", u.Shape, errs, dump(warns))
	}
	u, err = DecodeJSON([]byte(differ))
	if err != nil {
		t.Fatal(err)
	}
	errs, _ = u.Validate()
	if u.Shape != ShapeV1 || u.Spec.Region != "us-east-1" || len(errs) != 1 || errs[0].Field != "spec.upstreamSpec.awsEc2" {
		t.Errorf("differ: shape %v region %s errs %v", u.Shape, u.Spec.Region, errs)
	}
	if c, _ := CodeOf(errs[0]); c != codes.BothShapesDiffer {
		t.Errorf("differ: code %s", c)
	}
}

func TestDecodeNumbersFromAllSources(t *testing.T) {
	// unstructured (int64), encoding/json (float64), int, json.Number-like all decode the port.
	for _, port := range []any{int64(8080), float64(8080), 8080, int32(8080)} {
		obj := map[string]any{"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
			"spec": map[string]any{"awsEc2": map[string]any{"region": "us-east-1", "port": port}}}
		u, err := FromObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		if u.Spec.Port != 8080 || u.Check().Has(codes.WrongType) {
			t.Errorf("port %T: got %d, findings\n%s", port, u.Spec.Port, dump(u.Check()))
		}
	}
}

func TestParsePortTagValue(t *testing.T) {
	for v, want := range map[string]uint32{"80": 80, "1": 1, "65535": 65535, "0": 0, "65536": 0, "-1": 0, " 80": 0, "080": 0, "http": 0, "": 0, "8e3": 0} {
		got, err := ParsePortTagValue(v)
		if got != want || (err == nil) != (want != 0) {
			t.Errorf("ParsePortTagValue(%q) = %d, %v", v, got, err)
		}
	}
}

func TestDecodeProtoFieldNames(t *testing.T) {
	// Gloo decodes Upstreams as protobuf JSON, which accepts the protobuf field names too.
	camel := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"awsEc2":{"region":"us-east-1","secretRef":{"name":"s","namespace":"default"},"roleArn":"arn:aws:iam::123456789012:role/r",
	          "publicIp":true,"port":8080,"filters":[{"key":"a"},{"kvPair":{"key":"b","value":"c"}}]}}}`
	proto := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"aws_ec2":{"region":"us-east-1","secret_ref":{"name":"s","namespace":"default"},"role_arn":"arn:aws:iam::123456789012:role/r",
	          "public_ip":true,"port":8080,"filters":[{"key":"a"},{"kv_pair":{"key":"b","value":"c"}}]}}}`
	legacy := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"upstream_spec":{"aws_ec2":{"region":"us-east-1","secret_ref":{"name":"s","namespace":"default"},"role_arn":"arn:aws:iam::123456789012:role/r",
	          "public_ip":true,"port":8080,"filters":[{"key":"a"},{"kv_pair":{"key":"b","value":"c"}}]}}}}`
	want, err := DecodeJSON([]byte(camel))
	if err != nil {
		t.Fatal(err)
	}
	if fs := want.Check(); len(fs) != 0 {
		t.Fatalf("camelCase upstream: findings\n%s", dump(fs))
	}
	for name, doc := range map[string]string{"proto": proto, "legacy proto": legacy} {
		u, err := DecodeJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(u.Spec, want.Spec) {
			t.Errorf("%s: spec = %#v, want %#v", name, u.Spec, want.Spec)
		}
		if fs := u.Check(); len(fs) != 0 {
			t.Errorf("%s: findings\n%s", name, dump(fs))
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(doc), &obj); err != nil || !IsEC2(obj) {
			t.Errorf("%s: IsEC2 = false (%v)", name, err)
		}
	}
	if u, _ := DecodeJSON([]byte(legacy)); u.Shape != ShapeLegacy {
		t.Errorf("upstream_spec.aws_ec2: shape %v", u.Shape)
	}
}

func TestDecodeBlockSpeltTwice(t *testing.T) {
	differ := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"awsEc2":{"region":"us-east-1","filters":[{"key":"a"}]},"aws_ec2":{"region":"us-east-1"}}}`
	u, err := DecodeJSON([]byte(differ))
	if err != nil {
		t.Fatal(err)
	}
	errs, _ := u.Validate()
	if len(errs) != 1 || errs[0].Field != "spec.aws_ec2" || len(u.Spec.Filters) != 1 {
		t.Errorf("awsEc2 and aws_ec2 differ: errs %v, spec %#v", errs, u.Spec)
	} else if c, _ := CodeOf(errs[0]); c != codes.FieldSpeltTwiceDiffer {
		t.Errorf("code %s", c)
	}
	same := `{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"u","namespace":"ns"},
	  "spec":{"awsEc2":{"region":"us-east-1","port":80,"filters":[{"key":"a"}]},"aws_ec2":{"filters":[{"key":"a"}],"port":80.0,"region":"us-east-1"}}}`
	u, err = DecodeJSON([]byte(same))
	if err != nil {
		t.Fatal(err)
	}
	errs, warns := u.Validate()
	if len(errs) != 0 || !hasFinding(warns, codes.FieldSpeltTwiceSame, "spec.aws_ec2") {
		t.Errorf("same blocks: errs %v warns\n%s", errs, dump(warns))
	}
}
