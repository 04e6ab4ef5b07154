package verdict

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

func exampleUpstream(t *testing.T, name string) *ec2.Upstream {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	u, err := ec2.DecodeYAML(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return u
}

func problemCodes(ps []Problem) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return strings.Join(out, ",")
}

func TestCheckIAMDenyExplicitFromAnotherSource(t *testing.T) {
	res := &IAMResult{Principal: "arn:aws:iam::111122223333:user/gloo", Decision: DecisionExplicitDeny, Source: SourceAWSSimulator,
		Sources: []SourceResult{{Source: SourceAWSSimulator, Decision: DecisionExplicitDeny, Reason: "the IAM policy simulator finds an explicit deny"}},
		Local:   &policycheck.Decision{Result: policycheck.Allowed}}
	ps := checkIAMDeny(res, "us-east-1", "spec.awsEc2.secretRef")
	if problemCodes(ps) != "EC2G502" {
		t.Fatalf("problems %+v", ps)
	}
	for _, want := range []string{"explicit deny", "aws-simulator", "finds an explicit deny", "collected IAM policies say allowed"} {
		if !strings.Contains(ps[0].Message, want) {
			t.Errorf("message %q lacks %q", ps[0].Message, want)
		}
	}
	if ps := checkIAMDeny(&IAMResult{Decision: DecisionAllowed}, "us-east-1", "f"); ps != nil {
		t.Errorf("allowed: %+v", ps)
	}
}

func TestCheckIAMUnknown(t *testing.T) {
	if ps := checkIAMUnknown(Unknown("AWS did not answer"), "f"); problemCodes(ps) != "EC2G503" || !strings.Contains(ps[0].Message, "AWS did not answer") {
		t.Errorf("unknown: %+v", ps)
	}
	rejected := Unknown("rejected")
	rejected.Credentials = &CredentialsFailure{Code: codes.InvalidAccessKey}
	if ps := checkIAMUnknown(rejected, "f"); ps != nil {
		t.Errorf("rejected credentials also reported as unknown: %+v", ps)
	}
	if ps := checkCredentials(rejected, "f"); problemCodes(ps) != "EC2G505" || ps[0].Check != codes.CheckCredentials {
		t.Errorf("credentials: %+v", ps)
	}
	split := &IAMResult{Decision: DecisionAllowed, Source: SourceDryRun, Sources: []SourceResult{
		{Source: SourceDryRun, Decision: DecisionAllowed}, {Source: SourceLocal, Decision: DecisionImplicitDeny}}}
	if ps := checkIAMUnknown(split, "f"); problemCodes(ps) != "EC2G506" || ps[0].Severity != ec2.SeverityWarning {
		t.Errorf("disagreement: %+v", ps)
	}
}

func TestCheckPermissiveNoFilters(t *testing.T) {
	if ps := checkPermissiveNoFilters(string(policycheck.PermissiveCredentialsNoFilters), "spec.awsEc2.filters"); problemCodes(ps) != "EC2G601" {
		t.Errorf("%+v", ps)
	}
	if ps := checkPermissiveNoFilters(string(policycheck.PermissiveCredentialsDiscerningFilters), "f"); ps != nil {
		t.Errorf("%+v", ps)
	}
}

func TestIAMField(t *testing.T) {
	u := exampleUpstream(t, "seed-upstream-demo.yaml")
	if f := IAMField(u); f != "spec.upstreamSpec.awsEc2.secretRef" {
		t.Errorf("secret: %s", f)
	}
	u.Spec.RoleARN = "arn:aws:iam::123456789012:role/r"
	if f := IAMField(u); f != "spec.upstreamSpec.awsEc2.roleArn" {
		t.Errorf("role: %s", f)
	}
	u.Spec.RoleARN, u.Spec.SecretRef = "", nil
	if f := IAMField(u); f != "spec.upstreamSpec.awsEc2" {
		t.Errorf("pod identity: %s", f)
	}
}

func TestConsistency(t *testing.T) {
	rejected := Unknown("x")
	rejected.Credentials = &CredentialsFailure{Code: codes.InvalidAccessKey}
	allowed := &IAMResult{Decision: DecisionAllowed}
	cases := []struct {
		res     *IAMResult
		filters bool
		want    string
	}{
		{nil, true, ConsistencyUnknown},
		{Unknown("down"), true, ConsistencyUnknown},
		{rejected, true, string(policycheck.CredentialsDeny)},
		{&IAMResult{Decision: DecisionImplicitDeny}, false, string(policycheck.CredentialsDeny)},
		{&IAMResult{Decision: DecisionExplicitDeny}, true, string(policycheck.CredentialsDeny)},
		{allowed, true, string(policycheck.PermissiveCredentialsDiscerningFilters)},
		{allowed, false, string(policycheck.PermissiveCredentialsNoFilters)},
		{&IAMResult{Decision: DecisionAllowed, Scope: &policycheck.Scope{RegionPinned: true}}, false, string(policycheck.PermissiveCredentialsNoFilters)},
		// The secret owner's dedicated-account statement makes allowed credentials restrictive,
		// and nothing else.
		{&IAMResult{Decision: DecisionAllowed, DedicatedAccount: true}, false, string(policycheck.RestrictiveCredentialsNoFilters)},
		{&IAMResult{Decision: DecisionAllowed, DedicatedAccount: true, Scope: &policycheck.Scope{RegionPinned: true}}, true, string(policycheck.RestrictiveCredentialsDiscerningFilters)},
		{&IAMResult{Decision: DecisionImplicitDeny, DedicatedAccount: true}, false, string(policycheck.CredentialsDeny)},
		{&IAMResult{Decision: DecisionUnknown, DedicatedAccount: true}, false, ConsistencyUnknown},
	}
	for i, tc := range cases {
		if got := Consistency(tc.res, tc.filters); got != tc.want {
			t.Errorf("case %d: %s, want %s", i, got, tc.want)
		}
	}
}

func TestDecide(t *testing.T) {
	r := &IAMResult{Sources: []SourceResult{{Source: SourceDryRun, Decision: DecisionUnknown, Reason: "timeout"}, {Source: SourceLocal, Decision: DecisionImplicitDeny}}}
	Decide(r)
	if r.Decision != DecisionImplicitDeny || r.Source != SourceLocal || r.Unknown != "" {
		t.Errorf("%+v", r)
	}
	r = &IAMResult{Sources: []SourceResult{{Source: SourceDryRun, Decision: DecisionUnknown, Reason: "timeout"}}}
	Decide(r)
	if r.Decision != DecisionUnknown || r.Source != SourceNone || r.Unknown != "dry-run: timeout" {
		t.Errorf("%+v", r)
	}
}

func TestLocalReportsSizeLimitAsUnknown(t *testing.T) {
	engine, err := policycheck.NewEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	huge := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/x":"` + strings.Repeat("a", 200000) + `"}}}]}`
	var docs []policycheck.Document
	for i := range 8 {
		docs = append(docs, policycheck.Document{Name: "p" + string(rune('0'+i)), JSON: []byte(huge)})
	}
	ps, err := policycheck.IdentityPolicySet(docs...)
	var sr SourceResult
	if err != nil {
		sr = LocalFailure("cannot read the policies", err)
	} else {
		sr, _, _ = LocalSet(context.Background(), engine, ps, "arn:aws:iam::111122223333:user/gloo", "", "us-east-1", LocalOptions{})
	}
	if sr.Decision != DecisionUnknown || !strings.Contains(sr.Reason, policycheck.CodePolicySetTooLarge) || !strings.Contains(sr.Reason, "size limit") {
		t.Fatalf("over the limit: %+v", sr)
	}
	u := exampleUpstream(t, "seed-upstream-demo.yaml")
	res := &IAMResult{Sources: []SourceResult{sr}}
	Decide(res)
	v := FromResult(u, res)
	if problemCodes(v.Problems) != "EC2G503" || !strings.Contains(v.Problems[0].Message, policycheck.CodePolicySetTooLarge) || v.Consistency != ConsistencyUnknown {
		t.Errorf("verdict %+v", v)
	}
}
