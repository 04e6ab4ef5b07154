package admission

import (
	"testing"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// The webhook's own codes are distinct and do not collide with pkg/ec2's.
func TestCodesDistinctFromPkgEC2(t *testing.T) {
	own := []ec2.Code{CodeSecretAccessDenied, CodeSecretAccessUnverified, CodeSecretNotWatched, CodeSecretUnreadable,
		CodeIAMImplicitDeny, CodeIAMExplicitDeny, CodeIAMUnknown, CodeAssumeRoleDenied, CodeInvalidAccessKey,
		CodeIAMSourcesDisagree, CodePermissiveNoFilters}
	seen := map[ec2.Code]bool{}
	for _, c := range own {
		if seen[c] {
			t.Errorf("code %s used twice", c)
		}
		seen[c] = true
		if _, ok := c.Info(); ok {
			t.Errorf("code %s is also a pkg/ec2 code", c)
		}
	}
}
