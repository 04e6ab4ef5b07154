package admission

import (
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// Codes of the webhook's own rules. The spec and secret rules keep pkg/ec2's codes (EC2G0xx-3xx,
// docs/codes.md); the IAM explanations keep pkg/policycheck's finding codes (RESOURCE_MISMATCH, ...).
// docs/webhook.md lists these.
const (
	// CodeSecretAccessDenied: the requesting user may not `get` the Secret that a cross-namespace
	// secretRef names (SubjectAccessReview), so they may not borrow its credentials.
	CodeSecretAccessDenied ec2.Code = "EC2G401"
	// CodeSecretAccessUnverified: the SubjectAccessReview for a cross-namespace secretRef failed.
	CodeSecretAccessUnverified ec2.Code = "EC2G402"
	// CodeSecretNotWatched: the Secret is in a namespace the webhook does not read Secrets from.
	CodeSecretNotWatched ec2.Code = "EC2G403"
	// CodeSecretUnreadable: reading the Secret from the webhook's cache failed.
	CodeSecretUnreadable ec2.Code = "EC2G404"
	// CodePodIdentityNotAllowed: the Upstream has no secretRef, so it would use the pod's own AWS
	// identity, and its namespace is not in --pod-identity-namespaces.
	CodePodIdentityNotAllowed ec2.Code = "EC2G405"
	// CodeSecretNotShared: a cross-namespace secretRef names a Secret that does not list the
	// Upstream's namespace in its ec2guard.io/allowed-namespaces annotation; the discoverer would
	// refuse to use it.
	CodeSecretNotShared ec2.Code = "EC2G406"

	// The IAM codes are the one pipeline's (pkg/verdict, where each is described).
	CodeIAMImplicitDeny     = verdict.CodeIAMImplicitDeny
	CodeIAMExplicitDeny     = verdict.CodeIAMExplicitDeny
	CodeIAMUnknown          = verdict.CodeIAMUnknown
	CodeAssumeRoleDenied    = verdict.CodeAssumeRoleDenied
	CodeInvalidAccessKey    = verdict.CodeInvalidAccessKey
	CodeIAMSourcesDisagree  = verdict.CodeIAMSourcesDisagree
	CodePermissiveNoFilters = verdict.CodePermissiveNoFilters
)
