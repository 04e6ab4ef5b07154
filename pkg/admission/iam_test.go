package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

func iamRequest() awsclients.Request {
	s := testSecret()
	return awsclients.Request{Region: "us-east-1", Secret: &awsclients.SecretVersion{UID: s.UID, ResourceVersion: s.ResourceVersion}}
}

func TestIAMSeedPolicyIsImplicitDenyWithFindings(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "seed-policy.json")))
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), iamRequest())
	if res.Decision != DecisionImplicitDeny || res.Source != SourceLocal || res.Principal != testUser {
		t.Fatalf("result %+v, want implicitDeny by local for %s", res, testUser)
	}
	if res.Local == nil {
		t.Fatal("no local explanation")
	}
	var codes []string
	for _, f := range res.Local.Findings {
		codes = append(codes, f.Code)
	}
	if strings.Join(codes, ",") != policycheck.CodeResourceMismatch+","+policycheck.CodeUnsupportedConditionKey {
		t.Errorf("findings %v, want RESOURCE_MISMATCH and UNSUPPORTED_CONDITION_KEY", codes)
	}
	if !strings.Contains(res.Local.Findings[0].Message, "inline policy ec2guard of user/gloo") {
		t.Errorf("finding does not name the policy: %s", res.Local.Findings[0].Message)
	}
}

// TestIAMDedicatedAccountFromSecretVersion: the secret owner's dedicated-account statement, read
// with the secret's version, reaches the result (and so the consistency class).
func TestIAMDedicatedAccountFromSecretVersion(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	ev := testEvaluator(t, aws, nil, IAMOptions{})
	plain := iamRequest()
	if res := ev.Result(context.Background(), plain); res.DedicatedAccount {
		t.Fatal("a secret without the annotation is a dedicated account")
	}
	s := testSecret()
	s.ResourceVersion += "-annotated"
	s.Annotations = map[string]string{ec2.AnnotationSecretDedicatedAccount: "true"}
	annotated := awsclients.Request{Region: "us-east-1", Secret: awsclients.NewSecretVersion(s, plain.Secret.Credentials)}
	res := ev.Result(context.Background(), annotated)
	if !res.DedicatedAccount || verdict.Consistency(res, false) != string(policycheck.RestrictiveCredentialsNoFilters) {
		t.Fatalf("annotated secret: dedicated %v, class %s", res.DedicatedAccount, verdict.Consistency(res, false))
	}
}

func TestIAMFixedPolicyIsAllowed(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), iamRequest())
	if res.Decision != DecisionAllowed || res.Source != SourceLocal || !res.Known() || res.Denied() {
		t.Fatalf("result %+v, want allowed by local", res)
	}
}

func TestIAMInvalidAccessKeyIsACredentialsFailure(t *testing.T) {
	aws := newFakeAWS("{}")
	aws.prinErr = &awsclients.InvalidCredentialsError{MaskedKeyID: "AKIA****ZZZZ", Code: "InvalidClientTokenId"}
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), iamRequest())
	if res.Credentials == nil || res.Credentials.Code != codes.InvalidAccessKey {
		t.Fatalf("credentials failure %+v, want %s", res.Credentials, codes.InvalidAccessKey)
	}
	if res.Decision != DecisionUnknown || aws.Calls("policies") != 0 {
		t.Errorf("decision %s after %d policy collections; want unknown and no collection", res.Decision, aws.Calls("policies"))
	}
}

// assumeRoleDenied evaluates an Upstream whose secret may not assume the role it names (the
// role's trust policy names someone else) and returns the fake AWS, the role and the result.
func assumeRoleDenied(t *testing.T) (*fakeAWS, string, *IAMResult) {
	t.Helper()
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	role := "arn:aws:iam::123456789012:role/discovery"
	aws.roleErr = &awsclients.AssumeRoleError{RoleARN: role, Source: "secret default/gloo-tag-group1", Code: "AccessDenied", Message: "not authorized to perform sts:AssumeRole"}
	aws.policies[role] = &collect.Policies{Principal: role, PrincipalType: "role",
		TrustPolicy: &collect.Document{Origin: collect.Origin{Type: collect.Trust, AttachedTo: "role/discovery"},
			JSON: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/someone-else"},"Action":"sts:AssumeRole"}]}`}}
	r := iamRequest()
	r.RoleARN = role
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), r)
	return aws, role, res
}

func TestIAMAssumeRoleDeniedIsExplained(t *testing.T) {
	_, role, res := assumeRoleDenied(t)
	if res.Credentials == nil || res.Credentials.Code != codes.AssumeRoleDenied {
		t.Fatalf("credentials failure %+v, want %s", res.Credentials, codes.AssumeRoleDenied)
	}
	for _, want := range []string{"cannot assume role " + role, "sts:AssumeRole", "implicit deny"} {
		if !strings.Contains(res.Credentials.Message, want) {
			t.Errorf("message %q lacks %q", res.Credentials.Message, want)
		}
	}
}

func TestIAMAssumeRoleWithoutAWSAnswerIsUnknown(t *testing.T) {
	aws := newFakeAWS("{}")
	aws.roleErr = &awsclients.AssumeRoleError{RoleARN: "arn:aws:iam::123456789012:role/r", Err: errors.New("connection refused")}
	r := iamRequest()
	r.RoleARN = "arn:aws:iam::123456789012:role/r"
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), r)
	if res.Credentials != nil || res.Decision != DecisionUnknown || !strings.Contains(res.Unknown, "connection refused") {
		t.Fatalf("result %+v, want unknown naming the network error", res)
	}
}

func TestIAMSourcesInPriorityOrder(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	aws.dryRun = collect.Result{Source: collect.SourceDryRun, Decision: collect.Denied, Reason: "UnauthorizedOperation"}
	aws.simulate = collect.Result{Source: collect.SourceAWSSimulator, Decision: collect.Unknown, Reason: "not implemented"}
	res := testEvaluator(t, aws, nil, IAMOptions{Sources: []string{SourceLocal, SourceAWSSimulator, SourceDryRun}}).
		Result(context.Background(), iamRequest())
	if res.Decision != DecisionImplicitDeny || res.Source != SourceDryRun {
		t.Fatalf("decision %s by %s, want implicitDeny by dry-run", res.Decision, res.Source)
	}
	var order []string
	for _, sr := range res.Sources {
		order = append(order, sr.Source+"="+sr.Decision)
	}
	if got := strings.Join(order, " "); got != "dry-run=implicitDeny aws-simulator=unknown local=allowed" {
		t.Errorf("sources %s", got)
	}
	a, b, ok := res.Disagreement()
	if !ok || a.Source != SourceDryRun || b.Source != SourceLocal {
		t.Errorf("disagreement %v %v %v, want dry-run vs local", a, b, ok)
	}
}

func TestIAMUnknownWhenNoSourceDecides(t *testing.T) {
	aws := newFakeAWS("{}")
	aws.polErr = &collect.AccessDeniedError{Reader: "secret default/gloo-tag-group1", API: "iam:GetUser"}
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), iamRequest())
	if res.Decision != DecisionUnknown || res.Source != SourceNone {
		t.Fatalf("decision %s by %s, want unknown by none", res.Decision, res.Source)
	}
	if !strings.Contains(res.Unknown, "may not read IAM") {
		t.Errorf("unknown reason %q does not say why", res.Unknown)
	}
}

func TestIAMUnparsablePolicyIsUnknown(t *testing.T) {
	aws := newFakeAWS(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringLikee":{"a":"b"}}}]}`)
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), iamRequest())
	if res.Decision != DecisionUnknown || !strings.Contains(res.Unknown, "StringLikee") {
		t.Fatalf("result %+v, want unknown naming the bad operator", res)
	}
}

func TestIAMResultIsSharedPerKey(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	m, reg := testMetrics(t)
	ev := testEvaluator(t, aws, m, IAMOptions{})
	for range 3 {
		ev.Result(context.Background(), iamRequest())
	}
	other := iamRequest()
	other.Secret.ResourceVersion = "2" // an updated secret is a new key
	ev.Result(context.Background(), other)
	if n := aws.Calls("principal"); n != 2 {
		t.Errorf("%d principal lookups, want 2 (one per secret version)", n)
	}
	if got := counterValue(t, reg, MetricIAMCache, map[string]string{"result": CacheHit}); got != 2 {
		t.Errorf("cache hits %v, want 2", got)
	}
	if got := counterValue(t, reg, MetricIAMDecisions, map[string]string{"decision": DecisionAllowed, "source": SourceLocal}); got != 2 {
		t.Errorf("decisions counted %v, want 2", got)
	}
}

func TestNewIAMEvaluatorRejectsUnknownSource(t *testing.T) {
	_, err := NewIAMEvaluator(newFakeAWS("{}"), testEngine(t), IAMOptions{Sources: []string{"oracle"}}, nil, discardLog())
	if err == nil || !strings.Contains(err.Error(), `"oracle"`) {
		t.Fatalf("error %v, want one naming the source", err)
	}
}

func TestIAMUnknownReasonIsShort(t *testing.T) {
	aws := newFakeAWS("{}")
	aws.prinErr = fmt.Errorf("sts:GetCallerIdentity with secret default/x: operation error STS: %w",
		&net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, Err: errors.New("connect: connection refused")})
	res := testEvaluator(t, aws, nil, IAMOptions{}).Result(context.Background(), iamRequest())
	if res.Unknown != "AWS is unreachable (dial 127.0.0.1:5000: connect: connection refused)" {
		t.Errorf("unreachable: %q", res.Unknown)
	}

	hung := newFakeAWS("{}")
	hung.block = true
	res = testEvaluator(t, hung, nil, IAMOptions{Deadline: 20 * time.Millisecond}).Result(context.Background(), iamRequest())
	if res.Known() || !strings.Contains(res.Unknown, "within the IAM deadline of 20ms") {
		t.Errorf("hung: %+v", res)
	}
}
