package admission

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// Decoded is what the decorators learned about one admission request. It is handed down the chain
// as a value (WithMetrics creates it, the inner decorators fill it in), so the object is decoded
// once and nothing travels through the context.
type Decoded struct {
	// Object is the request's object decoded from JSON (maps, slices and scalars as in
	// unstructured.Unstructured.Object, integers as int64), set by WithEC2Only.
	Object map[string]any
	// Upstream is the EC2 Upstream read from Object, with the request's namespace and name, set by
	// WithUpstream.
	Upstream *ec2.Upstream
	// kind is the request's kind for MetricRequests (KindEC2 unless a decorator let it through).
	kind string
}

// handlerFunc is one step of the decorator chain: an admission handler over the request and what
// the steps before it decoded.
type handlerFunc func(ctx context.Context, req admission.Request, d *Decoded) admission.Response

// UpstreamHandler handles an admission request for a decoded EC2 Upstream (see WithUpstream):
// d.Object and d.Upstream are set.
type UpstreamHandler interface {
	HandleUpstream(ctx context.Context, req admission.Request, d *Decoded) admission.Response
}

// UpstreamHandlerFunc adapts a function to UpstreamHandler.
type UpstreamHandlerFunc func(ctx context.Context, req admission.Request, d *Decoded) admission.Response

// HandleUpstream implements UpstreamHandler.
func (f UpstreamHandlerFunc) HandleUpstream(ctx context.Context, req admission.Request, d *Decoded) admission.Response {
	return f(ctx, req, d)
}

// Webhook names, used in metrics and logs.
const (
	WebhookValidate = "validate"
	WebhookMutate   = "mutate"
)

// Paths the handlers are served at (the webhook configurations' clientConfig.service.path).
const (
	ValidatePath = "/validate-upstream"
	MutatePath   = "/mutate-upstream"
)

// Handlers are the two composed admission handlers.
type Handlers struct {
	Validate admission.Handler
	Mutate   admission.Handler
}

// NewHandlers composes the handlers: metrics outermost, then the fast non-EC2 filter (which
// decodes the object), then the reading of the Upstream from it, then the work.
func NewHandlers(v *Validator, m *Mutator, metrics *Metrics) *Handlers {
	return &Handlers{
		Validate: WithMetrics(WebhookValidate, metrics, WithEC2Only(WithUpstream(v))),
		Mutate:   WithMetrics(WebhookMutate, metrics, WithEC2Only(WithUpstream(m))),
	}
}
