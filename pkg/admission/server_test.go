package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// offlineManager is a manager that knows the Secret type without asking an API server; it is never
// started.
func offlineManager(t *testing.T) manager.Manager {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Secret"), meta.RESTScopeNamespace)
	mgr, err := manager.New(&rest.Config{Host: "https://127.0.0.1:1"}, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer:          webhook.NewServer(webhook.Options{Port: 1}),
		MapperProvider:         func(*rest.Config, *http.Client) (meta.RESTMapper, error) { return mapper, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

func TestRegisterServesBothPaths(t *testing.T) {
	mgr := offlineManager(t)
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "fixed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	if err := Register(context.Background(), mgr, h); err != nil {
		t.Fatal(err)
	}
	mux := mgr.GetWebhookServer().WebhookMux()
	for path, wantPatch := range map[string]bool{ValidatePath: false, MutatePath: true} {
		ar := admissionRequest(admissionv1.Create, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
		review := admissionv1.AdmissionReview{TypeMeta: metaTypeReview(), Request: &ar.AdmissionRequest}
		body, err := json.Marshal(review)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		mux.ServeHTTP(rec, req)
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
			t.Fatalf("%s: %d %s (%v)", path, rec.Code, rec.Body.String(), err)
		}
		if !out.Response.Allowed || (len(out.Response.Patch) > 0) != wantPatch || out.Response.UID != "req-1" {
			t.Errorf("%s: response %+v", path, out.Response)
		}
	}
}

func metaTypeReview() metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: schema.GroupVersion{Group: "admission.k8s.io", Version: "v1"}.String(), Kind: "AdmissionReview"}
}
