package admission

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// WithEC2Only lets through, untouched, every request that is not a CREATE or UPDATE of a live EC2
// Upstream: other operations, objects being deleted (finalizer updates must not be blocked) and
// Upstreams of other types. It decodes the object's JSON, the only time it is decoded, into
// d.Object for the steps after it.
func WithEC2Only(next handlerFunc) handlerFunc {
	return func(ctx context.Context, req admission.Request, d *Decoded) admission.Response {
		if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
			d.kind = KindSkipped
			return admission.Allowed("")
		}
		obj, err := decodeObject(req.Object.Raw)
		if err != nil || !ec2.IsEC2(obj) {
			d.kind = KindNonEC2
			return admission.Allowed("")
		}
		if req.Operation == admissionv1.Update && beingDeleted(obj) {
			d.kind = KindSkipped
			return admission.Allowed("")
		}
		d.Object = obj
		return next(ctx, req, d)
	}
}

// decodeObject decodes an object's JSON the way the API server reads it: keys case-sensitive,
// integers kept as int64.
func decodeObject(raw []byte) (map[string]any, error) {
	var obj map[string]any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// beingDeleted reports whether the object has metadata.deletionTimestamp.
func beingDeleted(obj map[string]any) bool {
	meta, _ := obj["metadata"].(map[string]any)
	return meta["deletionTimestamp"] != nil
}
