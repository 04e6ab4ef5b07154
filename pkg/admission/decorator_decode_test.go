package admission

import (
	"context"
	"net/http"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// objectOf decodes raw as the decorators do.
func objectOf(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	obj, err := decodeObject(raw)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// record is an UpstreamHandler that keeps what it was handed.
func record(got **Decoded) UpstreamHandler {
	return UpstreamHandlerFunc(func(_ context.Context, _ admission.Request, d *Decoded) admission.Response {
		*got = d
		return admission.Allowed("")
	})
}

func TestWithUpstreamDecodes(t *testing.T) {
	var got *Decoded
	h := WithUpstream(record(&got))
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		md := obj["metadata"].(map[string]any)
		delete(md, "namespace")
		delete(md, "name")
	})
	req := admissionRequest(admissionv1.Create, raw, "admin")
	req.Namespace, req.Name = "team-a", "from-request"
	if resp := h(context.Background(), req, &Decoded{kind: KindEC2}); !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	if got == nil || got.Object == nil {
		t.Fatalf("handed %+v, want the decoded object", got)
	}
	u := got.Upstream
	if u == nil || u.Key() != "team-a/from-request" || u.Shape != ec2.ShapeV1 || u.Spec.Region != "us-east-1" {
		t.Fatalf("decoded %+v", u)
	}
	if ref, _ := u.SecretName(); ref.String() != "default/gloo-tag-group1" {
		t.Errorf("secret %s", ref)
	}
}

func TestWithUpstreamBadInput(t *testing.T) {
	next := UpstreamHandlerFunc(func(context.Context, admission.Request, *Decoded) admission.Response {
		t.Error("next called")
		return admission.Allowed("")
	})
	d := &Decoded{kind: KindEC2}
	resp := WithUpstream(next)(context.Background(), admissionRequest(admissionv1.Create, []byte(`{"apiVersion":`), "admin"), d)
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("bad JSON: %+v, want HTTP 400", resp.Result)
	}
	d = &Decoded{kind: KindEC2}
	resp = WithUpstream(next)(context.Background(), admissionRequest(admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"Secret"}`), "admin"), d)
	if !resp.Allowed || d.kind != KindNonEC2 {
		t.Errorf("non-Upstream: %+v kind %s, want allowed, %s", resp.Result, d.kind, KindNonEC2)
	}
}

// Behind WithEC2Only the object is decoded once: the filter hands the decoded object on in the
// Decoded value, and WithUpstream reads the Upstream from it instead of decoding the raw bytes again.
func TestWithUpstreamReusesFilterDecode(t *testing.T) {
	var got *Decoded
	var handed map[string]any
	h := WithEC2Only(func(ctx context.Context, req admission.Request, d *Decoded) admission.Response {
		handed = d.Object
		return WithUpstream(record(&got))(ctx, req, d)
	})
	req := admissionRequest(admissionv1.Create, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), "admin")
	if resp := h(context.Background(), req, &Decoded{kind: KindEC2}); !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	if handed == nil {
		t.Fatal("WithEC2Only did not hand the decoded object on")
	}
	if got == nil || got.Upstream == nil || got.Upstream.Spec.Region != "us-east-1" {
		t.Fatalf("decoded %+v", got)
	}
	// With a decoded object handed on the raw bytes are not read (here they are not JSON).
	got = nil
	bad := admissionRequest(admissionv1.Create, []byte(`{`), "admin")
	if resp := WithUpstream(record(&got))(context.Background(), bad, &Decoded{Object: handed}); !resp.Allowed || got == nil || got.Upstream.Spec.Region != "us-east-1" {
		t.Fatalf("with a decoded object handed on: allowed=%v decoded=%+v", resp.Allowed, got)
	}
}

// requestInfoOf reads only the old object's spec and annotations: managedFields do not matter;
// annotations that are not strings, metadata that is not an object, or a spec value of another JSON
// type (81.0 for 81) count as a change.
func TestRequestInfoOfOldObject(t *testing.T) {
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), setAwsEc2("port", 81))
	req := admissionRequest(admissionv1.Update, raw, "alice")
	for _, tc := range []struct {
		name         string
		old          []byte
		metadataOnly bool
	}{
		{"other managedFields", patchJSON(t, raw, func(obj map[string]any) {
			obj["metadata"].(map[string]any)["managedFields"] = []any{map[string]any{"manager": "kubectl", "fieldsV1": map[string]any{"f:spec": map[string]any{}}}}
		}), true},
		{"annotation not a string", patchJSON(t, raw, func(obj map[string]any) {
			obj["metadata"].(map[string]any)["annotations"] = map[string]any{"a": 5}
		}), false},
		{"metadata not an object", patchJSON(t, raw, func(obj map[string]any) { obj["metadata"] = "x" }), false},
		{"same spec", raw, true},
		{"integer spec value as float", []byte(strings.Replace(string(raw), ":81", ":81.0", 1)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name != "same spec" && string(tc.old) == string(raw) {
				t.Fatal("the old object is the new one")
			}
			req.OldObject.Raw = tc.old
			if info := requestInfoOf(req, objectOf(t, req.Object.Raw)); info.metadataOnly != tc.metadataOnly {
				t.Errorf("metadataOnly %v, want %v", info.metadataOnly, tc.metadataOnly)
			}
		})
	}
}

// A new object whose annotations are not all strings, or whose metadata is not an object, counts as
// a change even when its spec equals the old one's.
func TestRequestInfoOfNewObject(t *testing.T) {
	old := upstreamJSON(t, "seed-upstream-demo-v1.yaml")
	for _, tc := range []struct {
		name         string
		obj          map[string]any
		metadataOnly bool
	}{
		{"same", objectOf(t, old), true},
		{"annotation not a string", objectOf(t, patchJSON(t, old, func(obj map[string]any) {
			obj["metadata"].(map[string]any)["annotations"] = map[string]any{"a": "x", "b": 5}
		})), false},
		{"annotations not a map", objectOf(t, patchJSON(t, old, func(obj map[string]any) {
			obj["metadata"].(map[string]any)["annotations"] = "x"
		})), false},
		{"metadata not an object", objectOf(t, patchJSON(t, old, func(obj map[string]any) { obj["metadata"] = 5 })), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := admissionRequest(admissionv1.Update, old, "alice")
			req.OldObject.Raw = old
			if info := requestInfoOf(req, tc.obj); info.metadataOnly != tc.metadataOnly {
				t.Errorf("metadataOnly %v, want %v", info.metadataOnly, tc.metadataOnly)
			}
		})
	}
}
