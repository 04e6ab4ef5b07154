package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	sigsjson "sigs.k8s.io/json"
)

// FuzzAdmissionReview sends arbitrary bodies to both webhook paths as the API server would (through
// controller-runtime's AdmissionReview decoding and the handlers): nothing panics, every answer is
// an AdmissionReview, and a request by a user who may read no secret and use no pod identity never
// reads a cross-namespace Secret or calls AWS. Seeds: testdata/fuzz/FuzzAdmissionReview and the
// reviews built below.
func FuzzAdmissionReview(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
		secrets := newFakeSecrets(testSecret())
		h, _ := testHandlers(t, aws, secrets, &fakeAccess{allowed: map[string]bool{}}, DefaultEnforcement())
		for _, handler := range []http.Handler{&webhook.Admission{Handler: h.Validate}, &webhook.Admission{Handler: h.Mutate}} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			handler.ServeHTTP(rec, req.WithContext(context.Background()))
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil {
				t.Fatalf("answer is not an AdmissionReview (%v): %s", err, rec.Body.Bytes())
			}
		}
		// This user may use no secret of another namespace and not the pod identity: every secret
		// read is in the Upstream's namespace (the request's, as the API server decoded it, which
		// is case-sensitive; else the object's), and AWS is called only with such a secret.
		var in admissionv1.AdmissionReview
		if sigsjson.UnmarshalCaseSensitivePreserveInts(body, &in) != nil || in.Request == nil {
			return
		}
		ns := in.Request.Namespace
		if ns == "" {
			var obj struct {
				Metadata struct {
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			_ = sigsjson.UnmarshalCaseSensitivePreserveInts(in.Request.Object.Raw, &obj)
			ns = obj.Metadata.Namespace
		}
		for _, nn := range secrets.read {
			if nn.Namespace != ns {
				t.Fatalf("secret %s read for a user with no access to it, Upstream namespace %q", nn, ns)
			}
		}
		if aws.Total() != 0 && ns != "default" {
			t.Fatalf("%d AWS calls for a user with no access, Upstream namespace %q", aws.Total(), ns)
		}
	})
}

// fuzzSeeds are AdmissionReviews of the examples: CREATE, and UPDATEs that change the spec or only
// the metadata, as a user with no access.
func fuzzSeeds(f *testing.F) [][]byte {
	raw := upstreamJSON(f, "seed-upstream-demo-v1.yaml")
	legacy := upstreamJSON(f, "seed-upstream-demo.yaml")
	review := func(op admissionv1.Operation, obj, old []byte) []byte {
		req := admissionRequest(op, obj, "alice", "system:authenticated")
		req.Kind.Group, req.Kind.Version, req.Kind.Kind = "gloo.solo.io", "v1", "Upstream"
		req.OldObject.Raw = old
		b, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metaTypeReview(), Request: &req.AdmissionRequest,
		})
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	noFilters := patchJSON(f, raw, func(obj map[string]any) {
		delete(obj["spec"].(map[string]any)["awsEc2"].(map[string]any), "filters")
	})
	labeled := patchJSON(f, raw, func(obj map[string]any) { obj["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"} })
	return [][]byte{
		review(admissionv1.Create, raw, nil),
		review(admissionv1.Create, legacy, nil),
		review(admissionv1.Update, noFilters, raw),
		review(admissionv1.Update, labeled, raw),
		review(admissionv1.Update, legacy, raw),
		[]byte(`{}`),
	}
}
