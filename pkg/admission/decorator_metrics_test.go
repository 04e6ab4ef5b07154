package admission

import (
	"context"
	"errors"
	"net/http"
	"testing"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestWithMetricsCountsKindAndResult(t *testing.T) {
	m, reg := testMetrics(t)
	respond := func(resp admission.Response, kind string) handlerFunc {
		return func(_ context.Context, _ admission.Request, d *Decoded) admission.Response {
			d.kind = kind
			return resp
		}
	}
	cases := []struct {
		resp   admission.Response
		kind   string
		result string
	}{
		{admission.Allowed(""), KindNonEC2, ResultAllowed},
		{admission.Denied("no"), KindEC2, ResultDenied},
		{admission.Patched("", jsonOp()), KindEC2, ResultPatched},
		{admission.Errored(http.StatusBadRequest, errors.New("bad")), KindEC2, ResultError},
	}
	for _, tc := range cases {
		WithMetrics(WebhookValidate, m, respond(tc.resp, tc.kind)).Handle(context.Background(), admissionRequest(admissionv1.Create, nil, "u"))
		if got := counterValue(t, reg, MetricRequests, map[string]string{"webhook": WebhookValidate, "kind": tc.kind, "result": tc.result}); got != 1 {
			t.Errorf("%s/%s counted %v, want 1", tc.kind, tc.result, got)
		}
	}
}

func jsonOp() jsonpatch.JsonPatchOperation {
	return jsonpatch.JsonPatchOperation{Operation: "add", Path: "/metadata/annotations", Value: map[string]any{}}
}
