package verdict

import "github.com/ec2guard/ec2guard/pkg/ec2"

// Codes of the IAM problems (docs/webhook.md lists them; pkg/admission re-exports them). The IAM
// engine's explanations keep pkg/policycheck's finding codes (RESOURCE_MISMATCH, ...).
const (
	// CodeIAMImplicitDeny: no statement allows ec2:DescribeInstances in the Upstream's region.
	CodeIAMImplicitDeny ec2.Code = "EC2G501"
	// CodeIAMExplicitDeny: a Deny statement denies ec2:DescribeInstances in the region.
	CodeIAMExplicitDeny ec2.Code = "EC2G502"
	// CodeIAMUnknown: no IAM source could decide within the deadline (AWS unreachable, IAM not
	// readable, a policy set over the engine's size limits, ...).
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

// Check names the group of IAM rules a problem belongs to; the webhook maps each to an
// enforcement action (pkg/admission's checks of the same names).
type Check string

// The IAM checks.
const (
	// CheckCredentials: AWS accepts the access key and roleArn can be assumed (EC2G504, EC2G505).
	CheckCredentials Check = "credentials"
	// CheckIAMDeny: ec2:DescribeInstances is denied, explicitly or implicitly (EC2G501, EC2G502).
	CheckIAMDeny Check = "iam-deny"
	// CheckIAMUnknown: the IAM decision could not be made (EC2G503, EC2G506).
	CheckIAMUnknown Check = "iam-unknown"
	// CheckPermissiveNoFilters: the consistency class permissive-credentials-no-filters (EC2G601).
	CheckPermissiveNoFilters Check = "permissive-no-filters"
)

// Checks returns the IAM checks in the order Of runs them.
func Checks() []Check {
	return []Check{CheckCredentials, CheckIAMDeny, CheckIAMUnknown, CheckPermissiveNoFilters}
}
