package admission

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// recorder is a chain step that records whether it was called.
type recorder struct{ called int }

func (r *recorder) handle(context.Context, admission.Request, *Decoded) admission.Response {
	r.called++
	return admission.Denied("reached")
}

func TestWithEC2OnlyLetsOthersThrough(t *testing.T) {
	ec2Raw := upstreamJSON(t, "seed-upstream-demo.yaml")
	deleting := patchJSON(t, ec2Raw, func(obj map[string]any) {
		obj["metadata"].(map[string]any)["deletionTimestamp"] = "2026-01-01T00:00:00Z"
	})
	cases := []struct {
		name    string
		op      admissionv1.Operation
		raw     []byte
		reached bool
		kind    string
	}{
		{"create ec2", admissionv1.Create, ec2Raw, true, KindEC2},
		{"update ec2", admissionv1.Update, ec2Raw, true, KindEC2},
		{"delete", admissionv1.Delete, nil, false, KindSkipped},
		{"connect", admissionv1.Connect, ec2Raw, false, KindSkipped},
		{"static upstream", admissionv1.Create, []byte(`{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"s"},"spec":{"static":{"hosts":[{"addr":"a","port":80}]}}}`), false, KindNonEC2},
		{"other kind", admissionv1.Create, []byte(`{"apiVersion":"v1","kind":"ConfigMap","spec":{"awsEc2":{}}}`), false, KindNonEC2},
		{"not json", admissionv1.Create, []byte(`{`), false, KindNonEC2},
		{"being deleted", admissionv1.Update, deleting, false, KindSkipped},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := &recorder{}
			k := &Decoded{kind: KindEC2}
			resp := WithEC2Only(next.handle)(context.Background(), admissionRequest(tc.op, tc.raw, "admin"), k)
			if (next.called == 1) != tc.reached {
				t.Fatalf("next called %d times, want reached=%v", next.called, tc.reached)
			}
			if !tc.reached && (!resp.Allowed || len(resp.Patches) != 0) {
				t.Errorf("response %+v, want allowed untouched", resp)
			}
			if (k.Object != nil) != tc.reached {
				t.Errorf("decoded object handed on: %v, want %v", k.Object != nil, tc.reached)
			}
			if k.kind != tc.kind {
				t.Errorf("kind %s, want %s", k.kind, tc.kind)
			}
		})
	}
}
