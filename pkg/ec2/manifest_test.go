package ec2

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

func manifestError(t *testing.T, err error) *ManifestError {
	t.Helper()
	var me *ManifestError
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T) is not a *ManifestError", err, err)
	}
	return me
}

func TestDecodeManifestsDuplicateKey(t *testing.T) {
	in := "# comment\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a}\n---\n" +
		"apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: b}\nspec:\n  awsEc2:\n    region: us-east-1\n    region: eu-west-1\n"
	_, err := DecodeManifests("x.yaml", []byte(in))
	me := manifestError(t, err)
	if me.File != "x.yaml" || me.Line != 12 || me.Doc != 2 || me.Field != "spec.awsEc2.region" {
		t.Errorf("error %+v", me)
	}
	if got := err.Error(); !strings.HasPrefix(got, "x.yaml:12: document 2: spec.awsEc2.region: duplicate key \"region\" (first at line 11)") {
		t.Errorf("message %q", got)
	}
	// Duplicates inside a list element, and in JSON.
	_, err = DecodeManifests("y.json", []byte(`{"apiVersion":"v1","kind":"List","items":[{"kind":"A","kind":"B"}]}`))
	if me := manifestError(t, err); me.Field != "items[0].kind" || me.Line != 1 {
		t.Errorf("json duplicate: %+v", me)
	}
}

func TestDecodeManifestsUnparseable(t *testing.T) {
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# c\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken\nspec: {}\n"
	_, err := DecodeManifests("bad.yaml", []byte(in))
	me := manifestError(t, err)
	if me.Doc != 2 || me.Line < 8 || !strings.Contains(me.Message, "not valid YAML") {
		t.Errorf("error %+v", me)
	}
	_, err = DecodeManifests("s.yaml", []byte("just a string\n"))
	if me := manifestError(t, err); me.Line != 1 || !strings.Contains(me.Message, "not a Kubernetes object") {
		t.Errorf("scalar: %+v", me)
	}
}

func TestDecodeManifestsListsAndLines(t *testing.T) {
	in := `# header
apiVersion: v1
kind: List
items:
- apiVersion: gloo.solo.io/v1
  kind: Upstream
  metadata: {name: a, namespace: n}
  spec:
    awsEc2:
      region: us-east-1
      filters:
      - kvPair: {key: k, vaule: v}
---

---
apiVersion: v1
kind: Secret
metadata: {name: s}
`
	objs, err := DecodeManifests("l.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Item != 1 || objs[0].Line != 5 || objs[0].Doc != 1 || objs[1].Doc != 2 || objs[1].Line != 16 || objs[1].Kind() != "Secret" {
		t.Fatalf("objects %+v", objs)
	}
	if l := objs[0].LineOf("spec.awsEc2.filters[0].kvPair.vaule"); l != 12 {
		t.Errorf("LineOf = %d, want 12", l)
	}
	if l := objs[0].LineOf("spec.awsEc2.nothere"); l != 9 {
		t.Errorf("LineOf missing field = %d, want 9 (the deepest existing part)", l)
	}
	_, err = objs[0].Upstream()
	me := manifestError(t, err)
	if me.Line != 12 || me.Field != "spec.awsEc2.filters[0].kvPair.vaule" || !strings.Contains(me.Message, string(codes.UnknownField)) || !strings.Contains(me.Message, `did you mean "value"`) {
		t.Errorf("unknown field: %+v", me)
	}
	if _, err := objs[1].Upstream(); !errors.Is(err, ErrNotUpstream) {
		t.Errorf("secret: %v", err)
	}
}

func TestDecodeManifestsExamplesDecode(t *testing.T) {
	for _, f := range []string{"testdata/seed-upstream-demo.yaml", "testdata/seed-upstream-demo-v1.yaml", "testdata/seed-secret.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := DecodeManifests(f, b)
		if err != nil || len(objs) == 0 {
			t.Fatalf("%s: %v %v", f, objs, err)
		}
		if objs[0].Kind() == UpstreamKind {
			if _, err := objs[0].Upstream(); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
}

func TestReadManifestsSizeBound(t *testing.T) {
	big := strings.NewReader(strings.Repeat("#", MaxManifestBytes+10))
	_, err := ReadManifests("big.yaml", big)
	if me := manifestError(t, err); !strings.Contains(me.Message, "larger than") {
		t.Errorf("%+v", me)
	}
}

func FuzzDecodeManifests(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n",
		"a: 1\na: 2\n",
		"---\n---\n",
		"apiVersion: gloo.solo.io/v1\nkind: Upstream\nspec:\n  awsEc2: {region: x, regoin: y}\n",
		"x: &a [*a]\n",
		"{\"a\": [1, {\"b\": 2, \"b\": 3}]}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := DecodeManifests("f.yaml", data)
		if err != nil {
			var me *ManifestError
			if !errors.As(err, &me) || me.File != "f.yaml" {
				t.Fatalf("error %v is not a ManifestError naming the file", err)
			}
			return
		}
		for i := range objs {
			o := &objs[i]
			if o.Line < 1 || o.LineOf("spec.awsEc2.filters[0].key") < o.Line {
				t.Fatalf("object %d: line %d, LineOf %d", i, o.Line, o.LineOf("spec.awsEc2.filters[0].key"))
			}
			_, _ = o.Upstream()
		}
	})
}
