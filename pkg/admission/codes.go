package admission

import "github.com/ec2guard/ec2guard/pkg/ec2"

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

	// CodeIAMImplicitDeny: no statement allows ec2:DescribeInstances in the Upstream's region.
	CodeIAMImplicitDeny ec2.Code = "EC2G501"
	// CodeIAMExplicitDeny: a Deny statement denies ec2:DescribeInstances in the region.
	CodeIAMExplicitDeny ec2.Code = "EC2G502"
	// CodeIAMUnknown: no IAM source could decide within the deadline (AWS unreachable, IAM not
	// readable, ...).
	CodeIAMUnknown ec2.Code = "EC2G503"
	// CodeAssumeRoleDenied: sts:AssumeRole on roleArn fails (identity policy or trust policy).
	CodeAssumeRoleDenied ec2.Code = "EC2G504"
	// CodeInvalidAccessKey: AWS rejects the access key (unknown, deleted, wrong secret key, expired).
	CodeInvalidAccessKey ec2.Code = "EC2G505"
	// CodeIAMSourcesDisagree: two IAM sources reached different decisions.
	CodeIAMSourcesDisagree ec2.Code = "EC2G506"

	// CodePermissiveNoFilters: the credentials can list every instance of the region and the
	// Upstream has no filters: it routes to every running instance the credentials can see.
	CodePermissiveNoFilters ec2.Code = "EC2G601"
)
