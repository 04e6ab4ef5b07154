package admission

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
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
func (m *Mutator) HandleUpstream(ctx context.Context, req admission.Request, d *Decoded) admission.Response {
	u := d.Upstream
	want := m.Reviewer.Annotations(ctx, requestInfoOf(req, d.Object), u)
	ops, err := annotationPatch(d.Object, want)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("ec2guard: Upstream %s: %w", u.Key(), err))
	}
	// Guarded like the validator's line: the arguments (the key, the annotations map boxed) are not
	// built for a line that is not written.
	if log := m.Log.V(1); log.Enabled() {
		log.Info("annotating Upstream", "upstream", u.Key(), "operation", req.Operation,
			"annotations", want, "changes", len(ops))
	}
	if len(ops) == 0 {
		return admission.Allowed("")
	}
	return admission.Patched("", ops...)
}
