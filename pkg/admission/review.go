package admission

import (
	"context"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// ConsistencyUnknown is the ec2guard.io/consistency value when the IAM decision is unknown.
const ConsistencyUnknown = verdict.ConsistencyUnknown

// PrincipalUnknown is the ec2guard.io/principal value when the principal could not be resolved.
const PrincipalUnknown = "unknown"

// IAMSource gives the IAM result for a set of credentials; *IAMEvaluator implements it.
type IAMSource interface {
	Result(ctx context.Context, r awsclients.Request) *IAMResult
}

// Reviewer runs the checks. It is shared by the validating and the mutating handler.
type Reviewer struct {
	Secrets SecretReader
	Access  AccessReviewer
	IAM     IAMSource
	// PodIdentityNamespaces may use the pod's own AWS identity (Upstreams without secretRef).
	PodIdentityNamespaces ec2.NamespaceList
}

// Review is everything the checks found about one Upstream.
type Review struct {
	// Problems in check order.
	Problems []Problem
	// IAM is nil when the IAM check could not run (spec or secret errors).
	IAM *IAMResult
	// Consistency is the consistency class, or ConsistencyUnknown.
	Consistency string
	// Ran holds the checks that ran (a check that passed ran and found nothing).
	Ran map[Check]bool
}

// inputs are the secret's results and, when they allow it, the AWS request for IAM.
type inputs struct {
	problems []Problem
	// secretChecked: the Secret check ran; sharedChecked: the opt-in (EC2G406, a secret-access
	// rule) ran on the Secret read.
	secretChecked, sharedChecked bool
	request                      *awsclients.Request // nil when IAM cannot be evaluated
}

// gather reads and checks the Secret (the access gate has opened) and builds the AWS request. The
// Secret is checked whatever the spec says, so that a denial lists every problem; IAM needs both
// to be usable.
func (rv *Reviewer) gather(ctx context.Context, u *ec2.Upstream, spec []Problem) inputs {
	var in inputs
	iamOK := !blocksIAM(u, spec)

	var secret *awsclients.SecretVersion
	if ref, ok := u.SecretName(); ok && ref.Name != "" {
		s, err := rv.Secrets.Secret(ctx, ref)
		creds, problems := checkSecret(u, s, err)
		in.secretChecked = true
		in.problems = append(in.problems, problems...)
		if hasErrors(problems) || s == nil {
			iamOK = false
		} else {
			shared := checkSecretShared(u, s.Namespace, s.Annotations)
			in.sharedChecked = true
			in.problems = append(in.problems, shared...)
			if len(shared) > 0 {
				iamOK = false
			} else {
				secret = awsclients.NewSecretVersion(s, creds)
			}
		}
	}
	if iamOK {
		in.request = &awsclients.Request{Region: u.Spec.Region, Secret: secret, RoleARN: u.Spec.RoleARN}
	}
	return in
}

// Validate runs every check for a validating request, in this order: the access gate (authorize),
// the spec rules, and — only when the gate opened — the Secret and IAM.
func (rv *Reviewer) Validate(ctx context.Context, req requestInfo, u *ec2.Upstream) Review {
	r := Review{Consistency: ConsistencyUnknown, Ran: map[Check]bool{codes.CheckSpec: true}}
	g := authorize(ctx, rv.Access, rv.PodIdentityNamespaces, req, u)
	r.Problems = append(r.Problems, g.problems...)
	r.Ran[codes.CheckSecretAccess] = g.reviewed || len(g.problems) > 0
	spec := checkSpec(ctx, u)
	r.Problems = append(r.Problems, spec...)
	if !g.use {
		return r
	}
	in := rv.gather(ctx, u, spec)
	r.Problems = append(r.Problems, in.problems...)
	if in.secretChecked {
		r.Ran[codes.CheckSecret] = true
	}
	if in.sharedChecked {
		r.Ran[codes.CheckSecretAccess] = true
	}
	if in.request == nil {
		return r
	}
	for _, c := range verdict.Checks() {
		r.Ran[c] = true
	}
	v := verdict.Of(ctx, u, rv.iamSource(*in.request))
	r.IAM, r.Consistency = v.IAM, v.Consistency
	// verdict.Problem has Problem's fields (Check is codes.Check in both): a conversion, not a copy
	// field by field, so a field added to one and not the other stops the build here.
	for _, p := range v.Problems {
		r.Problems = append(r.Problems, Problem(p))
	}
	return r
}

// iamSource is the webhook's IAM source for the one pipeline (pkg/verdict): the IAM evaluator over
// the request the access gate and the secret checks allowed.
func (rv *Reviewer) iamSource(req awsclients.Request) verdict.Source {
	return verdict.SourceFunc(func(ctx context.Context, _ *ec2.Upstream) *IAMResult { return rv.IAM.Result(ctx, req) })
}

// Annotations computes the four ec2guard.io annotations for a mutating request, behind the same
// access gate: when it is closed they are unknown/none; for a metadata-only UPDATE they are the old
// object's (so forged values are put back).
func (rv *Reviewer) Annotations(ctx context.Context, req requestInfo, u *ec2.Upstream) map[string]string {
	g := authorize(ctx, rv.Access, rv.PodIdentityNamespaces, req, u)
	if g.unchanged {
		return carriedAnnotations(req.oldAnnotations)
	}
	var src verdict.Source
	if g.use {
		if in := rv.gather(ctx, u, checkSpec(ctx, u)); in.request != nil {
			src = rv.iamSource(*in.request)
		}
	}
	v := verdict.Of(ctx, u, src)
	return annotationsFor(v.IAM, v.Consistency)
}

// ValidateFor runs the validating checks for user outside an admission request (a CREATE by
// user): the same gate, spec, Secret and IAM path.
func (rv *Reviewer) ValidateFor(ctx context.Context, user authenticationv1.UserInfo, u *ec2.Upstream) Review {
	return rv.Validate(ctx, requestInfo{user: user}, u)
}

// AnnotationsFor computes the annotations for user outside an admission request (ec2guard preview):
// the same gate and IAM path as a CREATE by user.
func (rv *Reviewer) AnnotationsFor(ctx context.Context, user authenticationv1.UserInfo, u *ec2.Upstream) map[string]string {
	return rv.Annotations(ctx, requestInfo{user: user}, u)
}

// blocksIAM reports whether a spec error makes the IAM check meaningless (verdict.BlocksIAM).
func blocksIAM(u *ec2.Upstream, spec []Problem) bool {
	var fields []string
	for _, p := range spec {
		if p.Severity == ec2.SeverityError {
			fields = append(fields, p.Field)
		}
	}
	return verdict.BlocksIAM(u, fields)
}

func hasErrors(ps []Problem) bool {
	for _, p := range ps {
		if p.Severity == ec2.SeverityError {
			return true
		}
	}
	return false
}
