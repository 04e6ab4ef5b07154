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
