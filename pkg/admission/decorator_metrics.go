package admission

import (
	"context"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Request kinds in MetricRequests.
const (
	KindEC2     = "ec2"     // an EC2 Upstream was checked
	KindNonEC2  = "non-ec2" // not an EC2 Upstream: let through untouched
	KindSkipped = "skipped" // an operation or object state ec2guard does not check
)

// Request results in MetricRequests.
const (
	ResultAllowed = "allowed"
	ResultPatched = "patched"
	ResultDenied  = "denied"
	ResultError   = "error"
)

// WithMetrics is the outermost decorator: it starts the request's Decoded, runs next with it and
// counts the request by webhook, the kind next recorded in it, and result. controller-runtime's
// webhook server measures the latency of each path already.
func WithMetrics(webhook string, m *Metrics, next handlerFunc) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		d := &Decoded{kind: KindEC2}
		resp := next(ctx, req, d)
		m.Request(webhook, d.kind, resultOf(resp))
		return resp
	})
}

func resultOf(resp admission.Response) string {
	switch {
	case !resp.Allowed && resp.Result != nil && resp.Result.Code != 0 && resp.Result.Code != http.StatusForbidden:
		return ResultError
	case !resp.Allowed:
		return ResultDenied
	case len(resp.Patches) > 0 || len(resp.Patch) > 0:
		return ResultPatched
	}
	return ResultAllowed
}
