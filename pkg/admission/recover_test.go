package admission

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// A panic inside an IAM computation must not take the webhook down: it becomes an unknown result.

func TestIAMFlightPanicIsUnknown(t *testing.T) {
	c, err := newIAMCache(8, time.Minute, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := c.get(context.Background(), testKey("1"), 10*time.Second,
		func(context.Context) *IAMResult { panic("boom") }, verdict.Unknown)
	if res == nil || res.Decision != DecisionUnknown || !strings.Contains(res.Unknown, "internal error") {
		t.Fatalf("result %+v, want unknown with an internal error", res)
	}
	if len(c.inflight) != 0 {
		t.Errorf("the flight was not finished: %v", c.inflight)
	}
}

func TestIAMSourcePanicIsUnknown(t *testing.T) {
	for _, api := range []string{"principal", "policies", "dry-run"} {
		t.Run(api, func(t *testing.T) {
			aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
			aws.panicOn = api
			res := testEvaluator(t, aws, nil, IAMOptions{Sources: []string{SourceLocal, SourceDryRun}}).Result(context.Background(), iamRequest())
			if api == "dry-run" {
				// The other source still decides; the panicking one is unknown.
				if res.Decision != DecisionAllowed || res.Sources[0].Decision != DecisionUnknown || !strings.Contains(res.Sources[0].Reason, "internal error") {
					t.Fatalf("result %+v", res)
				}
				return
			}
			if res.Decision != DecisionUnknown || !strings.Contains(res.Unknown, "internal error") {
				t.Fatalf("result %+v, want unknown with an internal error", res)
			}
		})
	}
}

// Explaining a refused AssumeRole reads the role's policies with the Upstream's own credentials
// only: the auditor identity never reads the policies of a role a user named.
func TestAssumeRoleExplanationNeverUsesTheAuditor(t *testing.T) {
	aws, role, res := assumeRoleDenied(t)
	if res.Credentials == nil || res.Credentials.Code != codes.AssumeRoleDenied {
		t.Fatalf("credentials failure %+v", res.Credentials)
	}
	for _, a := range aws.asked {
		if a == "policies "+role {
			t.Errorf("the role's policies were collected through the collector (auditor fallback): %v", aws.asked)
		}
	}
	if !strings.Contains(strings.Join(aws.asked, ","), "own-policies "+role) {
		t.Errorf("the role's trust policy was not read with the Upstream's credentials: %v", aws.asked)
	}
}
