package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// TestAuditCarriesDedicatedAccount: the group's clients carry the secret owner's dedicated-account
// statement into the audit, so an allowed group's Upstreams without filters are restrictive.
func TestAuditCarriesDedicatedAccount(t *testing.T) {
	var a *Auditor // the listing source only
	got := a.Audit(context.Background(), &awsclients.Clients{DedicatedAccount: true}, "us-east-1", nil)
	u := &ec2.Upstream{}
	u.Spec.Region = "us-east-1"
	if v := got.Verdict(u); !got.Result().DedicatedAccount || v.Consistency != string(policycheck.RestrictiveCredentialsNoFilters) || len(v.Problems) != 0 {
		t.Fatalf("dedicated group: %+v", v)
	}
}

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
		{"listed", nil, verdict.DecisionAllowed, verdict.SourceListing, policycheck.PermissiveCredentialsDiscerningFilters},
		{"unauthorized", fmt.Errorf("page 1: %w", fakeAPIError{"UnauthorizedOperation", "no"}), verdict.DecisionImplicitDeny, verdict.SourceListing, policycheck.CredentialsDeny},
		{"moto access denied", fakeAPIError{"AccessDenied", "no"}, verdict.DecisionImplicitDeny, verdict.SourceListing, policycheck.CredentialsDeny},
		{"revoked key", fakeAPIError{"AuthFailure", "bad key"}, verdict.DecisionUnknown, verdict.SourceNone, policycheck.CredentialsDeny},
		// Nothing decided: the class is unknown, as the webhook and the CLI have it (the one
		// pipeline, pkg/verdict), not credentials-deny.
		{"network", errors.New("connection refused"), verdict.DecisionUnknown, verdict.SourceNone, "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := a.Audit(ctx, nil, "us-east-1", c.err)
			if got.IAM.Decision != c.decision || got.IAM.Source != c.source {
				t.Fatalf("decision %s from %s, want %s from %s (%+v)", got.IAM.Decision, got.IAM.Source, c.decision, c.source, got.IAM)
			}
			if cl := verdict.Consistency(got.Result(), true); cl != string(c.class) {
				t.Fatalf("consistency %s, want %s", cl, c.class)
			}
			if c.err != nil && got.IAM.Sources[0].Reason == "" {
				t.Fatal("a failed listing carries no reason")
			}
		})
	}
	if cl := verdict.Consistency(a.Audit(ctx, nil, "us-east-1", nil).Result(), false); cl != string(policycheck.PermissiveCredentialsNoFilters) {
		t.Fatalf("no filters: %s", cl)
	}
}

// TestAuditRecoversFromPanic: a panic in the local IAM source (engine, policy collection) becomes
// an unknown local decision; the listing still decides.
func TestAuditRecoversFromPanic(t *testing.T) {
	a := &Auditor{localSource: func(context.Context, *awsclients.Clients, string) (discovered.SourceDecision, string, *policycheck.Scope) {
		panic("injected")
	}}
	got := a.Audit(context.Background(), &awsclients.Clients{}, "us-east-1", nil)
	if len(got.IAM.Sources) != 2 || got.IAM.Sources[1].Source != verdict.SourceLocal || got.IAM.Sources[1].Decision != verdict.DecisionUnknown ||
		!strings.Contains(got.IAM.Sources[1].Reason, "injected") {
		t.Fatalf("sources %+v, want the local source unknown with the panic as reason", got.IAM.Sources)
	}
	if got.IAM.Decision != verdict.DecisionAllowed || got.IAM.Source != verdict.SourceListing {
		t.Fatalf("decision %s from %s, want allowed from the listing", got.IAM.Decision, got.IAM.Source)
	}
	// Without a listing decision the result is unknown, not a crash.
	got = a.Audit(context.Background(), &awsclients.Clients{}, "us-east-1", errors.New("connection refused"))
	if got.IAM.Decision != verdict.DecisionUnknown {
		t.Fatalf("decision %s, want unknown", got.IAM.Decision)
	}
}
