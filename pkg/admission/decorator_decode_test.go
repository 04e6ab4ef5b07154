package admission

import (
	"context"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

func TestWithUpstreamDecodes(t *testing.T) {
	var got *ec2.Upstream
	h := WithUpstream(UpstreamHandlerFunc(func(_ context.Context, _ admission.Request, u *ec2.Upstream) admission.Response {
		got = u
		return admission.Allowed("")
	}))
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		md := obj["metadata"].(map[string]any)
		delete(md, "namespace")
		delete(md, "name")
	})
	req := admissionRequest(admissionv1.Create, raw, "admin")
	req.Namespace, req.Name = "team-a", "from-request"
	if resp := h.Handle(context.Background(), req); !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	if got == nil || got.Key() != "team-a/from-request" || got.Shape != ec2.ShapeV1 || got.Spec.Region != "us-east-1" {
		t.Fatalf("decoded %+v", got)
	}
	if ref, _ := got.SecretName(); ref.String() != "default/gloo-tag-group1" {
		t.Errorf("secret %s", ref)
	}
}

func TestWithUpstreamBadInput(t *testing.T) {
	next := UpstreamHandlerFunc(func(context.Context, admission.Request, *ec2.Upstream) admission.Response {
		t.Error("next called")
		return admission.Allowed("")
	})
	resp := WithUpstream(next).Handle(context.Background(), admissionRequest(admissionv1.Create, []byte(`{"apiVersion":`), "admin"))
	if resp.Allowed || resp.Result.Code != http.StatusBadRequest {
		t.Errorf("bad JSON: %+v, want HTTP 400", resp.Result)
	}
	resp = WithUpstream(next).Handle(context.Background(), admissionRequest(admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"Secret"}`), "admin"))
	if !resp.Allowed {
		t.Errorf("non-Upstream: %+v, want allowed", resp.Result)
	}
}

// Behind WithEC2Only the object is decoded once: the filter hands the decoded object on in the
// context, and WithUpstream takes it from there instead of decoding the raw bytes again.
func TestWithUpstreamReusesFilterDecode(t *testing.T) {
	var got *ec2.Upstream
	record := WithUpstream(UpstreamHandlerFunc(func(_ context.Context, _ admission.Request, u *ec2.Upstream) admission.Response {
		got = u
		return admission.Allowed("")
	}))
	var handed map[string]any
	h := WithEC2Only(admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		handed, _ = decodedObject(ctx)
		return record.Handle(ctx, req)
	}))
	ctx := context.WithValue(context.Background(), kindKey{}, &requestKind{kind: KindEC2})
	req := admissionRequest(admissionv1.Create, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), "admin")
	if resp := h.Handle(ctx, req); !resp.Allowed {
		t.Fatalf("denied: %v", resp.Result)
	}
	if handed == nil {
		t.Fatal("WithEC2Only did not hand the decoded object on")
	}
	if got == nil || got.Spec.Region != "us-east-1" {
		t.Fatalf("decoded %+v", got)
	}
	// With a decoded object in the context the raw bytes are not read (here they are not JSON).
	got = nil
	bad := admissionRequest(admissionv1.Create, []byte(`{`), "admin")
	if resp := record.Handle(withDecodedObject(context.Background(), handed), bad); !resp.Allowed || got == nil || got.Spec.Region != "us-east-1" {
		t.Fatalf("with a decoded object in the context: allowed=%v upstream=%+v", resp.Allowed, got)
	}
}
