package admission

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	jsonpatchapply "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// applyPatch applies the response's JSON patch to raw.
func applyPatch(t *testing.T, raw []byte, resp admission.Response) map[string]any {
	t.Helper()
	if err := resp.Complete(admission.Request{}); err != nil {
		t.Fatal(err)
	}
	out := raw
	if len(resp.Patch) > 0 {
		p, err := jsonpatchapply.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("decode patch %s: %v", resp.Patch, err)
		}
		if out, err = p.Apply(raw); err != nil {
			t.Fatalf("apply patch %s: %v", resp.Patch, err)
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(out, &obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func mutate(t *testing.T, h *Handlers, raw []byte) admission.Response {
	t.Helper()
	resp := h.Mutate.Handle(context.Background(), admissionRequest(admissionv1.Create, raw, "admin"))
	if !resp.Allowed {
		t.Fatalf("mutate denied: %v", resp.Result)
	}
	return resp
}

func TestMutateAddsOnlyTheFourAnnotations(t *testing.T) {
	for _, f := range []string{"seed-upstream-demo.yaml", "seed-upstream-demo-v1.yaml"} {
		t.Run(f, func(t *testing.T) {
			h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "fixed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
			raw := upstreamJSON(t, f) // no annotations map at all
			got := applyPatch(t, raw, mutate(t, h, raw))

			var want map[string]any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			want["metadata"].(map[string]any)["annotations"] = map[string]any{
				AnnotationPrincipal:   testUser,
				AnnotationIAMDecision: DecisionAllowed,
				AnnotationIAMSource:   SourceLocal,
				AnnotationConsistency: "permissive-credentials-discerning-filters",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("patched object\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestMutateKeepsOtherAnnotationsAndOverwritesForgedOnes(t *testing.T) {
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "seed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo.yaml"), func(obj map[string]any) {
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{"team": "a", AnnotationIAMDecision: "allowed"}
	})
	got := applyPatch(t, raw, mutate(t, h, raw))
	ann := got["metadata"].(map[string]any)["annotations"].(map[string]any)
	want := map[string]any{"team": "a", AnnotationPrincipal: testUser, AnnotationIAMDecision: DecisionImplicitDeny,
		AnnotationIAMSource: SourceLocal, AnnotationConsistency: "credentials-deny"}
	if !reflect.DeepEqual(ann, want) {
		t.Errorf("annotations %v, want %v", ann, want)
	}
}

func TestMutateWithoutUsableSecretAnnotatesUnknown(t *testing.T) {
	aws := newFakeAWS("{}")
	h, _ := testHandlers(t, aws, newFakeSecrets(), adminAccess(), DefaultEnforcement())
	raw := upstreamJSON(t, "seed-upstream-demo.yaml")
	ann := applyPatch(t, raw, mutate(t, h, raw))["metadata"].(map[string]any)["annotations"].(map[string]any)
	want := map[string]any{AnnotationPrincipal: PrincipalUnknown, AnnotationIAMDecision: DecisionUnknown,
		AnnotationIAMSource: SourceNone, AnnotationConsistency: ConsistencyUnknown}
	if !reflect.DeepEqual(ann, want) || aws.Calls("principal") != 0 {
		t.Errorf("annotations %v after %d AWS calls, want %v and none", ann, aws.Calls("principal"), want)
	}
}

// Once annotated, the same object needs no patch.
func TestMutateIsIdempotent(t *testing.T) {
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "fixed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	raw := upstreamJSON(t, "seed-upstream-demo.yaml")
	once, err := json.Marshal(applyPatch(t, raw, mutate(t, h, raw)))
	if err != nil {
		t.Fatal(err)
	}
	if resp := mutate(t, h, once); len(resp.Patches) != 0 {
		t.Errorf("second mutation patches %v, want none", resp.Patches)
	}
}

// The mutating call computes the IAM result; the validating call for the same object reuses it.
func TestMutateThenValidateShareTheIAMResult(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	h, _ := testHandlers(t, aws, newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	raw := upstreamJSON(t, "seed-upstream-demo.yaml")
	mutate(t, h, raw)
	validate(t, h, raw, "admin")
	if n := aws.Calls("principal"); n != 1 {
		t.Errorf("%d principal lookups, want 1", n)
	}
}
