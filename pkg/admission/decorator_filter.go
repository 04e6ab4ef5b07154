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
// Upstreams of other types. It decodes the object's JSON once and hands the result on in the
// context (see decodedObject), so WithUpstream does not decode it again.
func WithEC2Only(next admission.Handler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
			setKind(ctx, KindSkipped)
			return admission.Allowed("")
		}
		var obj map[string]any
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &obj); err != nil || !ec2.IsEC2(obj) {
			setKind(ctx, KindNonEC2)
			return admission.Allowed("")
		}
		if req.Operation == admissionv1.Update && beingDeleted(obj) {
			setKind(ctx, KindSkipped)
			return admission.Allowed("")
		}
		return next.Handle(withDecodedObject(ctx, obj), req)
	})
}

// beingDeleted reports whether the object has metadata.deletionTimestamp.
func beingDeleted(obj map[string]any) bool {
	meta, _ := obj["metadata"].(map[string]any)
	return meta["deletionTimestamp"] != nil
}

// decodedKey is the context key under which WithEC2Only leaves the request's decoded object.
type decodedKey struct{}

func withDecodedObject(ctx context.Context, obj map[string]any) context.Context {
	return context.WithValue(ctx, decodedKey{}, obj)
}

// decodedObject returns the request object WithEC2Only decoded, if it ran.
func decodedObject(ctx context.Context) (map[string]any, bool) {
	obj, ok := ctx.Value(decodedKey{}).(map[string]any)
	return obj, ok
}
