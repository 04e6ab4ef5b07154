package policycheck

import (
	"context"
	"strings"
	"testing"
)

func findingCodes(d Decision) []string {
	var out []string
	for _, f := range d.Findings {
		out = append(out, f.Code)
	}
	return out
}

func TestFindings(t *testing.T) {
	e := realEngine(t)
	ctx := context.Background()
	cases := []struct {
		name      string
		policy    string
		region    string
		want      string
		codes     []string
		mentioned []string
	}{
		{"seed policy", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":["arn:aws:ec2:us-east-1:111122223333:instance/*"],"Condition":{"StringEquals":{"ec2:ResourceTag/Owner":"Gloo"}}}]}`,
			"us-east-1", ImplicitDeny, []string{CodeResourceMismatch, CodeUnsupportedConditionKey},
			[]string{`"Resource": "*"`, "aws:RequestedRegion", "Upstream's filters", "instance/*", "ec2:ResourceTag/Owner"}},
		{"deny scoped to ARNs", pol(allowStmt("ec2:DescribeInstances", "*"), denyStmt("ec2:DescribeInstances", "arn:aws:ec2:*:*:instance/*")),
			"us-east-1", Allowed, []string{CodeIneffectiveDeny}, []string{"never applies", "Resource \\\"*\\\""}},
		{"deny on a tag condition", pol(allowStmt("ec2:DescribeInstances", "*"), withCond(denyStmt("ec2:*", "*"), `{"StringEquals":{"ec2:ResourceTag/env":"prod"}}`)),
			"us-east-1", Allowed, []string{CodeIneffectiveDeny, CodeUnsupportedConditionKey}, []string{"ec2:ResourceTag/env"}},
		{"deny with a negated tag condition applies", pol(allowStmt("ec2:DescribeInstances", "*"), withCond(denyStmt("ec2:*", "*"), `{"StringNotEquals":{"ec2:ResourceTag/env":"prod"}}`)),
			"us-east-1", ExplicitDeny, []string{CodeUnsupportedConditionKey}, nil},
		{"region pinned elsewhere", pol(withCond(allowStmt("ec2:DescribeInstances", "*"), `{"StringEquals":{"ec2:Region":["us-east-1","us-west-2"]}}`)),
			"eu-west-1", ImplicitDeny, []string{CodeRegionMismatch}, []string{`"us-east-1", "us-west-2"`, `"eu-west-1"`}},
		{"region and another failing condition is not a region mismatch", pol(withCond(allowStmt("ec2:DescribeInstances", "*"), `{"StringEquals":{"ec2:Region":"us-east-1","aws:username":"someone-else"}}`)),
			"eu-west-1", ImplicitDeny, nil, nil},
		{"variable in an old policy", `{"Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:username":"${aws:username}"}}}]}`,
			"us-east-1", ImplicitDeny, []string{CodeVariableInOldVersion}, []string{"Version is none", `"Version": "2012-10-17"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := policySetFromText(t, tc.policy)
			d, err := e.Evaluate(ctx, ps, DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo", "", tc.region))
			if err != nil {
				t.Fatal(err)
			}
			if d.Result != tc.want {
				t.Errorf("decision %s, want %s", d.Result, tc.want)
			}
			got := strings.Join(findingCodes(d), ",")
			if got != strings.Join(tc.codes, ",") {
				t.Errorf("findings %s, want %v\n%s", got, tc.codes, d.Summary())
			}
			var text strings.Builder
			for _, f := range d.Findings {
				if f.Statement == nil || f.Message == "" || f.Fix == "" {
					t.Errorf("incomplete finding %+v", f)
				}
				text.WriteString(f.Message + " " + f.Fix + "\n")
			}
			for _, m := range tc.mentioned {
				m = strings.ReplaceAll(m, `\"`, `"`)
				if !strings.Contains(text.String(), m) {
					t.Errorf("findings do not mention %q:\n%s", m, text.String())
				}
			}
		})
	}
}
