package admission

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// Mutator is the mutating handler: it sets the ec2guard.io annotations (principal, iam-decision,
// iam-source, consistency) with a JSON patch and changes nothing else. It computes the IAM result
// the validating call then finds in the cache.
type Mutator struct {
	Reviewer *Reviewer
	Log      logr.Logger
}

var _ UpstreamHandler = (*Mutator)(nil)

// HandleUpstream implements UpstreamHandler.
func (m *Mutator) HandleUpstream(ctx context.Context, req admission.Request, u *ec2.Upstream) admission.Response {
	want := m.Reviewer.Annotations(ctx, requestInfoOf(req, u), u)
	ops, err := annotationPatch(req.Object.Raw, want)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("ec2guard: Upstream %s: %w", u.Key(), err))
	}
	m.Log.V(1).Info("annotating Upstream", "upstream", u.Key(), "operation", req.Operation,
		"annotations", want, "changes", len(ops))
	if len(ops) == 0 {
		return admission.Allowed("")
	}
	return admission.Patched("", ops...)
}
