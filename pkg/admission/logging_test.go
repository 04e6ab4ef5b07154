package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// jsonLogger is a logger like the webhook binary's (slog JSON at info) writing to buf.
func jsonLogger(buf *bytes.Buffer) logr.Logger {
	return logr.FromSlogHandler(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// logLine decodes one JSON log line without its time.
func logLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("log line %q: %v", b, err)
	}
	delete(m, "time")
	return m
}

// A line written through the request logger carries the same fields as controller-runtime's
// DefaultLogConstructor gives it, also after WithName and WithValues.
func TestRequestLogConstructorFields(t *testing.T) {
	req := admissionRequest(admissionv1.Create, nil, "alice")
	req.Name, req.Resource = "web", metav1.GroupVersionResource{Group: "gloo.solo.io", Version: "v1", Resource: "upstreams"}
	var want, got bytes.Buffer
	admission.DefaultLogConstructor(jsonLogger(&want), &req).WithName("n").WithValues("k", 1).Error(errors.New("boom"), "failed", "x", "y")
	requestLogConstructor(jsonLogger(&got), &req).WithName("n").WithValues("k", 1).Error(errors.New("boom"), "failed", "x", "y")
	w, g := logLine(t, want.Bytes()), logLine(t, got.Bytes())
	wj, _ := json.Marshal(w)
	gj, _ := json.Marshal(g)
	if string(wj) != string(gj) {
		t.Errorf("logged %s\nwant     %s", gj, wj)
	}
	if g["user"] != "alice" || g["requestID"] != "req-1" {
		t.Errorf("fields missing: %s", gj)
	}
	// Below the level nothing is written.
	got.Reset()
	requestLogConstructor(jsonLogger(&got), &req).V(5).Info("received request")
	if got.Len() != 0 {
		t.Errorf("a V(5) line was written at info: %s", got.String())
	}
	if l := requestLogConstructor(jsonLogger(&got), nil); l.GetSink() == nil {
		t.Error("no logger for a nil request")
	}
}

// BenchmarkServeLogging measures controller-runtime's admission handling of one request with the
// binary's logger (slog JSON, info) and an empty handler: with controller-runtime's default request
// logger, which formats its fields on every request, and with requestLogConstructor.
func BenchmarkServeLogging(b *testing.B) {
	req := admissionRequest(admissionv1.Create, upstreamJSON(b, "seed-upstream-demo.yaml"), "admin")
	body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metaTypeReview(), Request: &req.AdmissionRequest})
	if err != nil {
		b.Fatal(err)
	}
	var sink bytes.Buffer
	log := jsonLogger(&sink)
	for _, bc := range []struct {
		name string
		c    func(logr.Logger, *admission.Request) logr.Logger
	}{{"default", admission.DefaultLogConstructor}, {"deferred", requestLogConstructor}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := &webhook.Admission{Handler: emptyHandler, LogConstructor: func(_ logr.Logger, r *admission.Request) logr.Logger { return bc.c(log, r) }}
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				srv.ServeHTTP(rec, r.WithContext(context.Background()))
				if rec.Code != http.StatusOK {
					b.Fatalf("HTTP %d", rec.Code)
				}
			}
			if sink.Len() != 0 {
				b.Fatalf("logged at info: %s", sink.String())
			}
		})
	}
}
