package admission

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// UpstreamHandler handles an admission request for a decoded EC2 Upstream (see WithUpstream).
type UpstreamHandler interface {
	HandleUpstream(ctx context.Context, req admission.Request, u *ec2.Upstream) admission.Response
}

// UpstreamHandlerFunc adapts a function to UpstreamHandler.
type UpstreamHandlerFunc func(ctx context.Context, req admission.Request, u *ec2.Upstream) admission.Response

// HandleUpstream implements UpstreamHandler.
func (f UpstreamHandlerFunc) HandleUpstream(ctx context.Context, req admission.Request, u *ec2.Upstream) admission.Response {
	return f(ctx, req, u)
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

// NewHandlers composes the handlers: metrics outermost, then the fast non-EC2 filter, then the
// decoding of the Upstream, then the work.
func NewHandlers(v *Validator, m *Mutator, metrics *Metrics) *Handlers {
	return &Handlers{
		Validate: WithMetrics(WebhookValidate, metrics, WithEC2Only(WithUpstream(v))),
		Mutate:   WithMetrics(WebhookMutate, metrics, WithEC2Only(WithUpstream(m))),
	}
}
