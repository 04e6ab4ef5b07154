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

// kindKey carries a *requestKind from WithMetrics to the inner decorators, which say what kind of
// request it was.
type kindKey struct{}

type requestKind struct{ kind string }

// setKind records the request's kind for WithMetrics (a no-op outside it).
func setKind(ctx context.Context, kind string) {
	if k, ok := ctx.Value(kindKey{}).(*requestKind); ok {
		k.kind = kind
	}
}

// WithMetrics counts every request of next by webhook, kind and result. controller-runtime's webhook
// server measures the latency of each path already.
func WithMetrics(webhook string, m *Metrics, next admission.Handler) admission.Handler {
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) (resp admission.Response) {
		k := &requestKind{kind: KindEC2}
		defer func() { m.Request(webhook, k.kind, resultOf(resp)) }()
		return next.Handle(context.WithValue(ctx, kindKey{}, k), req)
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
