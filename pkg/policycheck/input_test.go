package policycheck

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestRequestInputMatchesType: every key request.go's astValue writes into input.req is a field of
// regoRequest (input.go), and the typed value encodes to the same document.
func TestRequestInputMatchesType(t *testing.T) {
	e := realEngine(t)
	ps := policySetFromText(t, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"},"ForAnyValue:StringLike":{"aws:TagKeys":"a*"}}},
		{"Effect":"Deny","NotAction":"s3:*","Resource":"*","Condition":{"StringEquals":{"ec2:ResourceTag/Owner":"x"}}}]}`)
	for _, r := range []Request{
		DescribeInstancesRequest("arn:aws:sts::111122223333:assumed-role/Gloo/session", "", "eu-west-1"),
		{Principal: "arn:aws:iam::111122223333:user/gloo", Action: "ec2:CreateTags", Resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
			Context: map[string]any{"aws:TagKeys": []any{"a", "b"}, "aws:RequestedRegion": "us-east-1"}},
	} {
		p, err := prepareRequest(e.Catalog(), r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ast.JSON(p.astValue(ps.actionView(p.action, p.service, p.meta)))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var typed regoRequest
		if err := dec.Decode(&typed); err != nil {
			t.Fatalf("%s: input.req has a key regoRequest does not declare: %v\n%s", r.Action, err, raw)
		}
		again, err := json.Marshal(typed)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(again, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: input.req and regoRequest differ:\n%s\n%s", r.Action, raw, again)
		}
	}
}
