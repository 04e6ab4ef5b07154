package discovery

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

func TestAuditFromListingOutcome(t *testing.T) {
	ctx := context.Background()
	var a *Auditor // no local source
	cases := []struct {
		name     string
		err      error
		decision string
		source   string
		class    policycheck.ConsistencyClass
	}{
		{"listed", nil, DecisionAllowed, SourceListing, policycheck.PermissiveCredentialsDiscerningFilters},
		{"unauthorized", fmt.Errorf("page 1: %w", fakeAPIError{"UnauthorizedOperation", "no"}), DecisionImplicitDeny, SourceListing, policycheck.CredentialsDeny},
		{"moto access denied", fakeAPIError{"AccessDenied", "no"}, DecisionImplicitDeny, SourceListing, policycheck.CredentialsDeny},
		{"revoked key", fakeAPIError{"AuthFailure", "bad key"}, DecisionUnknown, SourceNone, policycheck.CredentialsDeny},
		{"network", errors.New("connection refused"), DecisionUnknown, SourceNone, policycheck.CredentialsDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := a.Audit(ctx, nil, "us-east-1", c.err)
			if got.IAM.Decision != c.decision || got.IAM.Source != c.source {
				t.Fatalf("decision %s from %s, want %s from %s (%+v)", got.IAM.Decision, got.IAM.Source, c.decision, c.source, got.IAM)
			}
			if cl := got.Consistency(true); cl != string(c.class) {
				t.Fatalf("consistency %s, want %s", cl, c.class)
			}
			if c.err != nil && got.IAM.Sources[0].Reason == "" {
				t.Fatal("a failed listing carries no reason")
			}
		})
	}
	if cl := a.Audit(ctx, nil, "us-east-1", nil).Consistency(false); cl != string(policycheck.PermissiveCredentialsNoFilters) {
		t.Fatalf("no filters: %s", cl)
	}
}
