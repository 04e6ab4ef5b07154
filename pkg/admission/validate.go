package admission

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// Validator is the validating handler: it runs every check and applies each problem's enforcement
// action. Dry-run requests get the same verdict (the checks have no side effects).
type Validator struct {
	Reviewer    *Reviewer
	Enforcement Enforcement
	Metrics     *Metrics
	Log         logr.Logger
}

var _ UpstreamHandler = (*Validator)(nil)

// HandleUpstream implements UpstreamHandler.
func (v *Validator) HandleUpstream(ctx context.Context, req admission.Request, d *Decoded) admission.Response {
	u := d.Upstream
	review := v.Reviewer.Validate(ctx, requestInfoOf(req, d.Object), u)
	denials, warnings := v.enforce(review)
	if len(denials) > 0 {
		v.Log.Info("denied Upstream", append(logFields(req, u, review), "codes", codesOf(denials), "warnings", len(warnings))...)
		return admission.Denied(denialMessage(u, denials)).WithWarnings(warnings...)
	}
	if log := v.Log.V(1); log.Enabled() {
		log.Info("allowed Upstream", append(logFields(req, u, review), "warnings", len(warnings))...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// logFields are the fields of the validator's lines. They are passed with each line rather than
// with WithValues, which formats them even when the line is not written, and built only for a line
// that is written (allowed requests log below --log-level=info).
func logFields(req admission.Request, u *ec2.Upstream, review Review) []any {
	kv := []any{"upstream", u.Key(), "operation", req.Operation, "user", req.UserInfo.Username,
		"dryRun", req.DryRun != nil && *req.DryRun, "consistency", review.Consistency}
	if review.IAM != nil {
		kv = append(kv, "principal", review.IAM.Principal, "iamDecision", review.IAM.Decision, "iamSource", review.IAM.Source)
	}
	return kv
}

// enforce applies the enforcement actions, counts every check result and returns the problems that
// deny and the warnings (deduplicated, in check order).
func (v *Validator) enforce(r Review) (denials []Problem, warnings []string) {
	seen := map[string]bool{}
	found := map[Check]bool{}
	for _, p := range r.Problems {
		outcome := p.Outcome(v.Enforcement.Action(p.Check))
		v.Metrics.CheckResult(p.Check, p.Code, string(outcome))
		found[p.Check] = true
		switch outcome {
		case Deny:
			denials = append(denials, p)
		case Warn:
			if w := p.Warning(); !seen[w] {
				seen[w] = true
				warnings = append(warnings, w)
			}
		}
	}
	for _, ci := range codes.Checks() { // the declaration itself: Checks() would copy it per request
		if r.Ran[ci.Check] && !found[ci.Check] {
			v.Metrics.CheckResult(ci.Check, "", OutcomePass)
		}
	}
	return denials, warnings
}

// denialMessage lists every denying problem, one per line: `CODE field: what is wrong — how to fix`.
func denialMessage(u *ec2.Upstream, denials []Problem) string {
	var b strings.Builder
	noun := "problem"
	if len(denials) > 1 {
		noun = "problems"
	}
	fmt.Fprintf(&b, "ec2guard: EC2 Upstream %s has %d %s:", u.Key(), len(denials), noun)
	for _, p := range denials {
		b.WriteString("\n")
		b.WriteString(p.DenialLine())
	}
	return b.String()
}

func codesOf(ps []Problem) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return out
}
