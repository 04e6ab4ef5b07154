package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
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

// serveLogConstructor is the request logger of the served handlers (Register).
var serveLogConstructor = requestLogConstructor

// BenchmarkServeUpdate measures one UPDATE of an EC2 Upstream (filters changed; object and old
// object carrying managedFields as the API server sends them) through controller-runtime's
// admission handling with the binary's logger (slog JSON at info, nothing written) and the request
// logger of Register: AdmissionReview decoding, the handler with warm caches, the response. The
// empty handler is the baseline.
func BenchmarkServeUpdate(b *testing.B) {
	h, _ := benchHandlers(b)
	managed := func(obj map[string]any) {
		obj["metadata"].(map[string]any)["managedFields"] = []any{map[string]any{
			"apiVersion": "gloo.solo.io/v1", "fieldsType": "FieldsV1", "manager": "kubectl", "operation": "Update", "time": "2026-01-01T00:00:00Z",
			"fieldsV1": map[string]any{"f:metadata": map[string]any{"f:annotations": map[string]any{".": map[string]any{},
				"f:ec2guard.io/consistency": map[string]any{}, "f:ec2guard.io/iam-decision": map[string]any{}, "f:ec2guard.io/iam-source": map[string]any{}, "f:ec2guard.io/principal": map[string]any{}}},
				"f:spec": map[string]any{".": map[string]any{}, "f:awsEc2": map[string]any{".": map[string]any{}, "f:filters": map[string]any{}, "f:region": map[string]any{},
					"f:secretRef": map[string]any{".": map[string]any{}, "f:name": map[string]any{}, "f:namespace": map[string]any{}}}}},
		}}
	}
	raw := upstreamJSON(b, "seed-upstream-demo-v1.yaml")
	req := admissionRequest(admissionv1.Update, patchJSON(b, raw, managed), "admin")
	req.OldObject.Raw = patchJSON(b, patchJSON(b, raw, managed), setAwsEc2("port", 81))
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeReview(), Request: &req.AdmissionRequest})
	if err != nil {
		b.Fatal(err)
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	for _, bc := range []struct {
		name string
		h    admission.Handler
	}{{"empty", emptyHandler}, {"validate", h.Validate}, {"mutate", h.Mutate}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := &webhook.Admission{Handler: bc.h, LogConstructor: func(_ logr.Logger, r *admission.Request) logr.Logger { return serveLogConstructor(log, r) }}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				srv.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("HTTP %d %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}
