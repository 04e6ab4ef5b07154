package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// allowAll is an AccessReviewer that allows everything without recording (benchmarks).
type allowAll struct{}

func (allowAll) CanGetSecret(context.Context, authenticationv1.UserInfo, types.NamespacedName) (bool, string, error) {
	return true, "", nil
}

// emptyHandler is the baseline: an admission handler that does nothing.
var emptyHandler = admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
	return admission.Allowed("")
})

// benchHandlers are the real handlers over in-memory Secrets and access reviews and a fake AWS
// with the fixed policy, with the IAM cache warmed by one request.
func benchHandlers(b *testing.B) (*Handlers, admission.Request) {
	b.Helper()
	h, _ := testHandlers(b, newFakeAWS(string(readTestdata(b, "fixed-policy.json"))), newFakeSecrets(testSecret()), allowAll{}, DefaultEnforcement())
	req := admissionRequest(admissionv1.Create, upstreamJSON(b, "seed-upstream-demo.yaml"), "admin")
	if resp := h.Validate.Handle(context.Background(), req); !resp.Allowed {
		b.Fatalf("warm-up denied: %s", resp.Result.Message)
	}
	return h, req
}

// BenchmarkValidateHandler measures the validating handler with warm caches (every check runs; the
// IAM result comes from the cache) against the empty handler, in-process.
func BenchmarkValidateHandler(b *testing.B) {
	h, req := benchHandlers(b)
	for _, bc := range []struct {
		name string
		h    admission.Handler
	}{{"empty", emptyHandler}, {"validate-warm", h.Validate}, {"mutate-warm", h.Mutate}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if resp := bc.h.Handle(ctx, req); !resp.Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkValidateHTTP adds controller-runtime's AdmissionReview decoding and encoding (no TLS,
// no network): the webhook server's per-request work besides the handler.
func BenchmarkValidateHTTP(b *testing.B) {
	h, req := benchHandlers(b)
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeReview(), Request: &req.AdmissionRequest})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		h    admission.Handler
	}{{"empty", emptyHandler}, {"validate-warm", h.Validate}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := &webhook.Admission{Handler: bc.h}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				srv.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
		})
	}
}
