package verdict

import (
	"strings"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// IAM decisions, as written to the ec2guard.io/iam-decision annotation and the reports.
const (
	DecisionAllowed      = policycheck.Allowed
	DecisionImplicitDeny = policycheck.ImplicitDeny
	DecisionExplicitDeny = policycheck.ExplicitDeny
	DecisionUnknown      = string(collect.Unknown)
)

// IAM decision sources, as written to ec2guard.io/iam-source; SourceNone when no source decided.
// SourceListing is the discoverer's own paginated ec2:DescribeInstances with the Upstream's
// credentials: ground truth like the dry run, whose extra call it saves.
const (
	SourceLocal        = collect.SourceLocal
	SourceAWSSimulator = collect.SourceAWSSimulator
	SourceDryRun       = collect.SourceDryRun
	SourceListing      = "describe-instances"
	SourceNone         = collect.SourceNone
)

// ConsistencyUnknown is the consistency class when the IAM decision is unknown or IAM was not
// evaluated.
const ConsistencyUnknown = "unknown"

// SourceResult is one source's answer.
type SourceResult struct {
	Source   string
	Decision string
	// Reason explains the decision or why the source could not decide.
	Reason string
}

// CredentialsFailure says AWS rejected the credentials themselves: the access key is not valid, or
// roleArn cannot be assumed.
type CredentialsFailure struct {
	Code    codes.Code
	Message string
	Fix     string
}

func credentialsFailure(c codes.Code, args ...any) *CredentialsFailure {
	return &CredentialsFailure{Code: c, Message: c.Message(args...), Fix: c.Fix(args...)}
}

// InvalidAccessKey is the failure when AWS rejects the access key; message is AWS's answer, which
// names no secret value.
func InvalidAccessKey(message string) *CredentialsFailure {
	return credentialsFailure(codes.InvalidAccessKey, message)
}

// AssumeRoleDenied is the failure when roleArn cannot be assumed.
func AssumeRoleDenied(message, roleARN string) *CredentialsFailure {
	return credentialsFailure(codes.AssumeRoleDenied, message, roleARN)
}

// IAMResult is what a front end knows about one set of credentials: the principal and every
// source's answer. Decide sets the decision from the sources. A result may be shared (the webhook
// caches it) and must not be modified once decided.
type IAMResult struct {
	// Principal is the IAM ARN whose policies decide ("" when unknown).
	Principal string
	// Decision is allowed, implicitDeny, explicitDeny or unknown; Source the source that decided
	// (SourceNone when none did).
	Decision string
	Source   string
	// Sources are every enabled source's answers, in priority order.
	Sources []SourceResult
	// Local is the engine's decision with its explanation, when the local source decided.
	Local *policycheck.Decision
	// Scope is the credentials' scope measured by the local engine (nil when not measured).
	Scope *policycheck.Scope
	// DedicatedAccount: the secret's owner states that the credentials' account holds only the
	// instances meant for its Upstreams (ec2.AnnotationSecretDedicatedAccount). IAM cannot show
	// it; it makes allowed credentials restrictive in the consistency class.
	DedicatedAccount bool
	// Credentials is set when AWS rejected the key or the role.
	Credentials *CredentialsFailure
	// Unknown says why the decision is unknown.
	Unknown string
}

// Known reports whether some source decided.
func (r *IAMResult) Known() bool { return r.Decision != DecisionUnknown }

// Denied reports whether the decision is an explicit or implicit deny.
func (r *IAMResult) Denied() bool {
	return r.Decision == DecisionImplicitDeny || r.Decision == DecisionExplicitDeny
}

// Unknown is the result when nothing decided.
func Unknown(reason string) *IAMResult {
	return &IAMResult{Decision: DecisionUnknown, Source: SourceNone, Unknown: reason}
}

// Decide sets the decision from the first source, in the order of r.Sources, that decided; when
// none did, Unknown joins their reasons.
func Decide(r *IAMResult) {
	r.Decision, r.Source = DecisionUnknown, SourceNone
	var reasons []string
	for _, sr := range r.Sources {
		if sr.Decision != DecisionUnknown {
			r.Decision, r.Source = sr.Decision, sr.Source
			r.Unknown = ""
			return
		}
		reasons = append(reasons, sr.Source+": "+sr.Reason)
	}
	if len(reasons) > 0 {
		r.Unknown = strings.Join(reasons, "; ")
	}
	if r.Unknown == "" {
		r.Unknown = "no IAM source is enabled"
	}
}

// Disagreement returns the first pair of decided sources that disagree on allowed vs denied.
func (r *IAMResult) Disagreement() (a, b SourceResult, ok bool) {
	var decided []SourceResult
	for _, sr := range r.Sources {
		if sr.Decision != DecisionUnknown {
			decided = append(decided, sr)
		}
	}
	for i := 1; i < len(decided); i++ {
		if (decided[0].Decision == DecisionAllowed) != (decided[i].Decision == DecisionAllowed) {
			return decided[0], decided[i], true
		}
	}
	return SourceResult{}, SourceResult{}, false
}

// FromCollect converts a pkg/policycheck/collect source result (dry run, simulator).
func FromCollect(r collect.Result) SourceResult {
	sr := SourceResult{Source: r.Source, Decision: DecisionUnknown, Reason: r.Reason}
	switch r.Decision {
	case collect.Allowed:
		sr.Decision = DecisionAllowed
	case collect.Denied:
		sr.Decision = DecisionImplicitDeny
		if r.Detail == collect.DetailExplicitDeny {
			sr.Decision = DecisionExplicitDeny
		}
	}
	return sr
}
