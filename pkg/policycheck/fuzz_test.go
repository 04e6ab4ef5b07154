package policycheck

import (
	"context"
	"errors"
	"os"
	"testing"
)

// FuzzPolicyEvaluate parses a policy and, when it parses, compiles it as an identity policy and
// decides DescribeInstances and s3:GetObject with it (policy variables, wildcards, every condition
// family): nothing may panic, and every decision is one of the three results or a coded error.
// Corpus: testdata/fuzz/FuzzPolicyEvaluate.
func FuzzPolicyEvaluate(f *testing.F) {
	for _, path := range []string{"testdata/seed-policy.json", "testdata/fixed-policy.json"} {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "us-east-1")
	}
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Desc?ibe*","Resource":"arn:aws:s3:::${aws:username}/*","Condition":{"StringLike":{"aws:PrincipalArn":"${aws:PrincipalArn}*"},"ArnLike":{"aws:SourceArn":"arn:*:iam::*:role/${aws:username, 'x'}"}}}]}`), "eu-west-1")
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"s3:*","NotResource":"arn:aws:s3:::${*}?","Condition":{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["A","${aws:username}"]},"NumericLessThan":{"s3:max-keys":"10"},"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"Null":{"aws:TokenIssueTime":"true"}}}}`), "us-west-2")
	e, err := NewEngine(context.Background(), WithDecisionCache(0))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, doc []byte, region string) {
		if len(doc) > 16<<10 || len(region) > 64 {
			return
		}
		p, err := ParsePolicy("fuzz.json", doc)
		if err != nil {
			return
		}
		ps, err := NewPolicySet(PolicySetInput{Identity: []NamedPolicy{{Name: "fuzz.json", Policy: p}}})
		if err != nil {
			var le *LimitError
			var pe *ParseError
			if !errors.As(err, &pe) && !errors.As(err, &le) {
				t.Fatalf("compile: an error that is neither a ParseError nor a LimitError: %v", err)
			}
			return
		}
		ctx := context.Background()
		for _, r := range []Request{
			DescribeInstancesRequest("arn:aws:iam::111122223333:user/gloo*?", "", region),
			{Principal: "arn:aws:sts::111122223333:assumed-role/Gloo/s", Action: "s3:GetObject", Resource: "arn:aws:s3:::b/gloo/x:y",
				Context: map[string]any{"aws:username": "gloo", "aws:TagKeys": []any{"a", "${x}"}, "aws:SourceIp": "10.1.2.3", "s3:max-keys": "5", "aws:CurrentTime": "2026-06-01T00:00:00Z", "aws:RequestedRegion": region}},
		} {
			d, err := e.Evaluate(ctx, ps, r)
			if err != nil {
				var le *LimitError
				if !errors.As(err, &le) {
					t.Fatalf("%s: %v", r.Action, err)
				}
				continue
			}
			switch d.Result {
			case Allowed, ExplicitDeny, ImplicitDeny:
			default:
				t.Fatalf("%s: decision %q", r.Action, d.Result)
			}
		}
	})
}
