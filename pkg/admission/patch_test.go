package admission

import (
	"encoding/json"
	"testing"
)

func TestEscapePointer(t *testing.T) {
	for in, want := range map[string]string{
		"ec2guard.io/principal": "ec2guard.io~1principal",
		"a~b/c":                 "a~0b~1c",
		"plain":                 "plain",
	} {
		if got := escapePointer(in); got != want {
			t.Errorf("escapePointer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAnnotationPatch(t *testing.T) {
	want := map[string]string{AnnotationPrincipal: "p", AnnotationIAMDecision: "allowed"}
	cases := []struct {
		name, obj, patch string
	}{
		{"no metadata.annotations", `{"metadata":{"name":"x"}}`,
			`[{"op":"add","path":"/metadata/annotations","value":{"ec2guard.io/iam-decision":"allowed","ec2guard.io/principal":"p"}}]`},
		{"null annotations", `{"metadata":{"annotations":null}}`,
			`[{"op":"add","path":"/metadata/annotations","value":{"ec2guard.io/iam-decision":"allowed","ec2guard.io/principal":"p"}}]`},
		{"other annotations", `{"metadata":{"annotations":{"a":"b"}}}`,
			`[{"op":"add","path":"/metadata/annotations/ec2guard.io~1iam-decision","value":"allowed"},{"op":"add","path":"/metadata/annotations/ec2guard.io~1principal","value":"p"}]`},
		{"one differs", `{"metadata":{"annotations":{"ec2guard.io/principal":"p","ec2guard.io/iam-decision":"unknown"}}}`,
			`[{"op":"add","path":"/metadata/annotations/ec2guard.io~1iam-decision","value":"allowed"}]`},
		{"all in place", `{"metadata":{"annotations":{"ec2guard.io/principal":"p","ec2guard.io/iam-decision":"allowed"}}}`, `null`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := annotationPatch(objectOf(t, []byte(tc.obj)), want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(ops)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.patch {
				t.Errorf("patch %s, want %s", got, tc.patch)
			}
		})
	}
}

func TestAnnotationPatchBadInput(t *testing.T) {
	for _, obj := range []string{`{"metadata":"x"}`, `{"metadata":{"annotations":["a"]}}`, `{"metadata":{"annotations":"a"}}`} {
		if _, err := annotationPatch(objectOf(t, []byte(obj)), map[string]string{"a": "b"}); err == nil {
			t.Errorf("%s: no error", obj)
		}
	}
}

func TestAnnotationsFor(t *testing.T) {
	got := annotationsFor(&IAMResult{Principal: testUser, Decision: DecisionAllowed, Source: SourceDryRun}, "permissive-credentials-no-filters")
	want := map[string]string{AnnotationPrincipal: testUser, AnnotationIAMDecision: "allowed", AnnotationIAMSource: "dry-run",
		AnnotationConsistency: "permissive-credentials-no-filters"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != 4 {
		t.Errorf("%d annotations, want 4", len(got))
	}
}
