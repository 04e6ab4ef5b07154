package admission

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// A non-EC2 Upstream passes both handlers untouched, without a secret read or an AWS call.
func TestHandlersLeaveNonEC2UpstreamsAlone(t *testing.T) {
	aws := newFakeAWS("{}")
	secrets := newFakeSecrets()
	secrets.err = errNoSecretsExpected
	h, reg := testHandlers(t, aws, secrets, adminAccess(), DefaultEnforcement())
	static := []byte(`{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"s","namespace":"gloo-system"},"spec":{"static":{"hosts":[{"addr":"10.0.0.1","port":80}]}}}`)
	for name, handler := range map[string]admission.Handler{WebhookValidate: h.Validate, WebhookMutate: h.Mutate} {
		resp := handler.Handle(context.Background(), admissionRequest(admissionv1.Create, static, "admin"))
		if !resp.Allowed || len(resp.Patches) != 0 || len(resp.Warnings) != 0 {
			t.Errorf("%s: %+v", name, resp)
		}
		if got := counterValue(t, reg, MetricRequests, map[string]string{"webhook": name, "kind": KindNonEC2, "result": ResultAllowed}); got != 1 {
			t.Errorf("%s: non-ec2 requests counted %v, want 1", name, got)
		}
	}
	if n := aws.Calls("principal"); n != 0 {
		t.Errorf("%d AWS calls", n)
	}
}

func TestUpstreamHandlerFunc(t *testing.T) {
	called := false
	var h UpstreamHandler = UpstreamHandlerFunc(func(context.Context, admission.Request, *Decoded) admission.Response {
		called = true
		return admission.Allowed("")
	})
	h.HandleUpstream(context.Background(), admission.Request{}, &Decoded{Upstream: &ec2.Upstream{}})
	if !called {
		t.Error("function not called")
	}
}
