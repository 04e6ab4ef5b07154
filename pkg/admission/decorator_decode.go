package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// WithUpstream decodes the request's object into an ec2.Upstream and calls next; it reuses the
// object WithEC2Only decoded when that ran first. The namespace is the request's when it has one;
// the name comes from the request when the object does not carry it (generateName). An
// object that is not an EC2 Upstream is allowed untouched; one that is not JSON is answered with
// HTTP 400.
func WithUpstream(next UpstreamHandler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		var u *ec2.Upstream
		var err error
		if obj, ok := decodedObject(ctx); ok {
			u, err = ec2.FromObject(obj)
		} else {
			u, err = ec2.DecodeJSON(req.Object.Raw)
		}
		switch {
		case errors.Is(err, ec2.ErrNotEC2) || errors.Is(err, ec2.ErrNotUpstream):
			setKind(ctx, KindNonEC2)
			return admission.Allowed("")
		case err != nil:
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("ec2guard: %w", err))
		}
		// The request's namespace is the one the API server authorized; the access gate compares
		// the secret's namespace with it, never with one only the object claims.
		if req.Namespace != "" {
			u.Namespace = req.Namespace
		}
		if u.Name == "" {
			u.Name = req.Name
		}
		return next.HandleUpstream(ctx, req, u)
	})
}
