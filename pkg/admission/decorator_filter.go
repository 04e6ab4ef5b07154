package admission

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// WithEC2Only lets through, untouched and without decoding, every request that is not a CREATE or
// UPDATE of a live EC2 Upstream: other operations, objects being deleted (finalizer updates must not
// be blocked) and Upstreams of other types (decided from the raw bytes with ec2.IsEC2JSON).
func WithEC2Only(next admission.Handler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		switch {
		case req.Operation != admissionv1.Create && req.Operation != admissionv1.Update:
			setKind(ctx, KindSkipped)
			return admission.Allowed("")
		case !ec2.IsEC2JSON(req.Object.Raw):
			setKind(ctx, KindNonEC2)
			return admission.Allowed("")
		case req.Operation == admissionv1.Update && beingDeleted(req.Object.Raw):
			setKind(ctx, KindSkipped)
			return admission.Allowed("")
		}
		return next.Handle(ctx, req)
	})
}

// beingDeleted reports whether the object has metadata.deletionTimestamp.
func beingDeleted(raw []byte) bool {
	var probe struct {
		Metadata struct {
			DeletionTimestamp *string `json:"deletionTimestamp"`
		} `json:"metadata"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &probe); err != nil {
		return false
	}
	return probe.Metadata.DeletionTimestamp != nil
}
