package verdict

import "github.com/ec2guard/ec2guard/pkg/codes"

// Check is the webhook check (pkg/codes) an IAM problem belongs to; the webhook maps each to an
// enforcement action.
type Check = codes.Check

// Checks returns the IAM checks in the order Of runs them.
func Checks() []Check {
	return []Check{codes.CheckCredentials, codes.CheckIAMDeny, codes.CheckIAMUnknown, codes.CheckPermissiveNoFilters}
}
