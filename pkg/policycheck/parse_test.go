package policycheck

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParsePolicyShapes(t *testing.T) {
	p, err := ParsePolicy("obj", []byte(`{"Version":"2012-10-17","Id":"x","Statement":{"Sid":"One","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.StatementIsList || len(p.Statements) != 1 || p.ID != "x" || !p.VariablesEnabled() {
		t.Fatalf("unexpected policy: %+v", p)
	}
	s := p.Statements[0]
	if s.Sid != "One" || s.Effect != Allow || !reflect.DeepEqual(s.Action, []string{"ec2:DescribeInstances"}) || !s.HasResource {
		t.Fatalf("unexpected statement: %+v", s)
	}

	p, err = ParsePolicy("list", []byte(`{"Statement":[
	  {"Effect":"Deny","NotAction":["s3:*","iam:*"],"NotResource":["arn:aws:s3:::b/*"]},
	  {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:role/r"],"Service":"ec2.amazonaws.com","Federated":"cognito-identity.amazonaws.com","CanonicalUser":"abc"}},
	  {"Effect":"Allow","Action":"*","Resource":"*","NotPrincipal":"*"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !p.StatementIsList || p.Version != "" || p.VariablesEnabled() {
		t.Fatalf("version/list: %+v", p)
	}
	if got := p.Statements[0]; !reflect.DeepEqual(got.NotAction, []string{"s3:*", "iam:*"}) || !got.HasNotResource {
		t.Fatalf("statement 0: %+v", got)
	}
	pr := p.Statements[1].Principal
	if pr == nil || len(pr.AWS) != 2 || pr.Service[0] != "ec2.amazonaws.com" || pr.Federated[0] == "" || pr.CanonicalUser[0] != "abc" {
		t.Fatalf("principal: %+v", pr)
	}
	if np := p.Statements[2].NotPrincipal; np == nil || !np.Any {
		t.Fatalf("not principal: %+v", np)
	}
}

func TestParseConditionValues(t *testing.T) {
	p, err := ParsePolicy("c", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
	  "Bool":{"aws:SecureTransport":true},
	  "NumericLessThan":{"aws:MultiFactorAuthAge":3600},
	  "ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*","b"]},
	  "stringequals":{"aws:RequestedRegion":"us-east-1","aws:username":"gloo"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Condition{}
	for _, c := range p.Statements[0].Conditions {
		got[c.Key] = c
	}
	if c := got["aws:SecureTransport"]; c.Base != "Bool" || c.Values[0] != "true" {
		t.Errorf("bool: %+v", c)
	}
	if c := got["aws:MultiFactorAuthAge"]; c.Base != "NumericLessThan" || c.Values[0] != "3600" {
		t.Errorf("number: %+v", c)
	}
	if c := got["aws:TagKeys"]; c.Base != "StringLike" || c.Set != SetForAnyValue || !c.IfExists || len(c.Values) != 2 {
		t.Errorf("set operator: %+v", c)
	}
	if c := got["aws:RequestedRegion"]; c.Base != "StringEquals" || c.Operator != "stringequals" {
		t.Errorf("case-insensitive operator: %+v", c)
	}
	if len(got) != 5 {
		t.Errorf("want 5 conditions (multiple keys are separate conditions), got %d", len(got))
	}
}

func TestParseErrorsNamePathAndValue(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown operator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"},
		   {"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLikee":{"aws:username":"x"}}}]}`,
			[]string{`Statement[2].Condition.StringLikee: unknown operator "StringLikee"`, `did you mean "StringLike"?`}},
		{"effect case", `{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}`,
			[]string{`Statement.Effect: must be "Allow" or "Deny" (case-sensitive), got "allow"`}},
		{"missing effect", `{"Statement":[{"Action":"*","Resource":"*"}]}`, []string{`Statement[0].Effect: is required`}},
		{"bad version", `{"Version":"2012-10-18","Statement":[]}`, []string{`Version: must be "2012-10-17" or "2008-10-17", got "2012-10-18"`}},
		{"not json", `{"Statement":`, []string{"not valid JSON"}},
		{"trailing data", `{"Statement":[]} {}`, []string{"unexpected data after the policy object"}},
		{"not object", `[1]`, []string{"a policy must be a JSON object, got a list"}},
		{"both action", `{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}]}`, []string{"Statement[0]: has both Action and NotAction"}},
		{"no action", `{"Statement":[{"Effect":"Allow","Resource":"*"}]}`, []string{"Statement[0]: needs Action or NotAction"}},
		{"bad action", `{"Statement":[{"Effect":"Allow","Action":["ec2:a:b"],"Resource":"*"}]}`, []string{`Statement[0].Action[0]: an action must be "*" or "service:Action", got "ec2:a:b"`}},
		{"bad resource", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"i-123"}]}`, []string{`Statement[0].Resource: a resource must be "*" or an ARN`, `"i-123"`}},
		{"resource type", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":[1]}]}`, []string{`Statement[0].Resource[0]: must be a string, got a number 1`}},
		{"unknown element", `{"Statement":[{"Effect":"Allow","Action":"*","Resources":"*"}]}`, []string{`Statement[0].Resources: unknown statement element (did you mean "Resource"?)`}},
		{"principal string", `{"Statement":[{"Effect":"Allow","Action":"*","Principal":"arn:aws:iam::1:root"}]}`, []string{`Statement[0].Principal: a principal string must be "*"`}},
		{"principal type", `{"Statement":[{"Effect":"Allow","Action":"*","Principal":{"Aws":"*"}}]}`, []string{`Statement[0].Principal.Aws: unknown principal type (did you mean "AWS"?)`}},
		{"set operator", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringLike":{"k":"v"}}}]}`, []string{`unknown set operator "ForSomeValues"`}},
		{"null ifexists", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}]}`, []string{`Null cannot be combined with IfExists`}},
		{"condition value", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}]}`, []string{`Statement[0].Condition.StringEquals.k: a condition value must be a string, number or boolean, got an object`}},
		{"statement missing", `{"Version":"2012-10-17"}`, []string{"Statement: is required"}},
		{"empty condition values", `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}]}`, []string{"Statement[0].Condition.StringEquals.k: needs at least one value"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy("p.json", []byte(tc.doc))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "policy p.json: ") {
				t.Errorf("error does not name the policy: %s", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestParseErrorCollectsAllIssues(t *testing.T) {
	_, err := ParsePolicy("p", []byte(`{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"x","Resource":"*"}]}`))
	var pe *ParseError
	if !errors.As(err, &pe) || len(pe.Issues) != 2 {
		t.Fatalf("want 2 issues, got %v", err)
	}
}

func TestParseErrorQuotesLongValuesShortened(t *testing.T) {
	long := strings.Repeat("x", 500)
	_, err := ParsePolicy("p", []byte(`{"Statement":[{"Effect":"Allow","Action":"*","Resource":"`+long+`"}]}`))
	if err == nil || len(err.Error()) > 400 {
		t.Fatalf("want a short error, got %d chars", len(err.Error()))
	}
}

func TestValidateByKind(t *testing.T) {
	withPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Principal":"*"}]}`
	noPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`
	rcpAllow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Principal":"*"}]}`
	rcpOK := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","Principal":"*"}]}`
	cases := []struct {
		doc     string
		kind    PolicyKind
		wantErr string
	}{
		{withPrincipal, KindIdentity, "Principal/NotPrincipal is not allowed in identity policies"},
		{withPrincipal, KindSCP, "not allowed in scp policies"},
		{noPrincipal, KindResource, "needs Principal or NotPrincipal"},
		{noPrincipal, KindIdentity, ""},
		{withPrincipal, KindResource, ""},
		{rcpAllow, KindRCP, `must have Effect "Deny"`},
		{rcpOK, KindRCP, ""},
		{`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*"}]}`, KindIdentity, "needs Resource or NotResource"},
	}
	for _, tc := range cases {
		p, err := ParsePolicy("p", []byte(tc.doc))
		if err != nil {
			t.Fatal(err)
		}
		err = p.Validate("p", tc.kind)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.kind, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: want error containing %q, got %v", tc.kind, tc.wantErr, err)
		}
	}
}
