package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// WithUpstream reads the EC2 Upstream from the object WithEC2Only decoded (decoding the request's
// JSON only when it runs without that filter) into d.Upstream and calls next. The namespace is the
// request's when it has one; the name comes from the request when the object does not carry it
// (generateName). An object that is not an EC2 Upstream is allowed untouched; one that is not JSON
// is answered with HTTP 400.
func WithUpstream(next UpstreamHandler) handlerFunc {
	return func(ctx context.Context, req admission.Request, d *Decoded) admission.Response {
		if d.Object == nil {
			obj, err := decodeObject(req.Object.Raw)
			if err != nil {
				return admission.Errored(http.StatusBadRequest, fmt.Errorf("ec2guard: decode upstream JSON: %w", err))
			}
			d.Object = obj
		}
		u, err := ec2.FromObject(d.Object)
		switch {
		case errors.Is(err, ec2.ErrNotEC2) || errors.Is(err, ec2.ErrNotUpstream):
			d.kind = KindNonEC2
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
		d.Upstream = u
		return next.HandleUpstream(ctx, req, d)
	}
}
