package admission

import (
	"context"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

func decoded(t *testing.T, raw []byte) *ec2.Upstream {
	t.Helper()
	u, err := ec2.DecodeJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func problemCodes(ps []Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Code)
	}
	return strings.Join(out, ",")
}

func TestCheckSpec(t *testing.T) {
	u := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["filters"] = []any{map[string]any{}}
	}))
	ps := checkSpec(u)
	if problemCodes(ps) != "EC2G101" || ps[0].Check != CheckSpec || ps[0].Field != "spec.awsEc2.filters[0]" || ps[0].Fix == "" {
		t.Errorf("problems %+v", ps)
	}
	if ps := checkSpec(decoded(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"))); len(ps) != 0 {
		t.Errorf("the tutorial Upstream has problems: %+v", ps)
	}
}

func TestCheckSecret(t *testing.T) {
	u := decoded(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"))
	creds, ps := checkSecret(u, testSecret(), nil)
	if len(ps) != 0 || creds.AccessKeyID != testAccessKeyID || creds.SecretAccessKey() != testSecretKey {
		t.Errorf("good secret: %+v %v", ps, creds)
	}
	swapped := testSecret()
	swapped.Data["aws_access_key_id"], swapped.Data["aws_secret_access_key"] = swapped.Data["aws_secret_access_key"], swapped.Data["aws_access_key_id"]
	if _, ps := checkSecret(u, swapped, nil); !strings.Contains(problemCodes(ps), "EC2G308") || ps[0].Field != "spec.awsEc2.secretRef" {
		t.Errorf("swapped keys: %+v", ps)
	}
	if _, ps := checkSecret(u, nil, nil); problemCodes(ps) != "EC2G301" || ps[0].Severity != ec2.SeverityError {
		t.Errorf("missing secret: %+v", ps)
	}
	if _, ps := checkSecret(u, nil, &SecretNotWatchedError{Namespace: "default", Namespaces: []string{"gloo-system"}}); problemCodes(ps) != "EC2G403" {
		t.Errorf("unwatched namespace: %+v", ps)
	}
	if _, ps := checkSecret(u, nil, errors.New("timeout")); problemCodes(ps) != "EC2G404" || ps[0].Check != CheckSecret {
		t.Errorf("read error: %+v", ps)
	}
	for _, p := range ps {
		if strings.Contains(p.Message, testSecretKey) {
			t.Error("a problem shows the secret key")
		}
	}
}

func TestCheckSecretAccessRunsOnlyForCrossNamespaceReferences(t *testing.T) {
	access := &fakeAccess{allowed: map[string]bool{}}
	sameNS := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["secretRef"].(map[string]any)["namespace"] = "gloo-system"
	}))
	req := requestInfo{user: authenticationv1.UserInfo{Username: "alice"}}
	if ps, ran := checkSecretAccess(context.Background(), access, req, sameNS); ran || len(ps) != 0 || len(access.asked) != 0 {
		t.Errorf("same namespace: ran %v, %+v, asked %v", ran, ps, access.asked)
	}
	cross := decoded(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"))
	ps, ran := checkSecretAccess(context.Background(), access, req, cross)
	if !ran || problemCodes(ps) != "EC2G401" || access.asked[0] != "alice default/gloo-tag-group1" {
		t.Errorf("cross namespace: ran %v, %+v, asked %v", ran, ps, access.asked)
	}
}

func TestCheckIAMDenyExplicitFromAnotherSource(t *testing.T) {
	res := &IAMResult{Principal: testUser, Decision: DecisionExplicitDeny, Source: SourceAWSSimulator,
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
	if ps := checkIAMUnknown(unknownResult("AWS did not answer"), "f"); problemCodes(ps) != "EC2G503" || !strings.Contains(ps[0].Message, "AWS did not answer") {
		t.Errorf("unknown: %+v", ps)
	}
	rejected := unknownResult("rejected")
	rejected.Credentials = &CredentialsFailure{Code: CodeInvalidAccessKey}
	if ps := checkIAMUnknown(rejected, "f"); ps != nil {
		t.Errorf("rejected credentials also reported as unknown: %+v", ps)
	}
	if ps := checkCredentials(rejected, "f"); problemCodes(ps) != "EC2G505" || ps[0].Check != CheckCredentials {
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
	u := decoded(t, upstreamJSON(t, "seed-upstream-demo.yaml"))
	if f := iamField(u); f != "spec.upstreamSpec.awsEc2.secretRef" {
		t.Errorf("secret: %s", f)
	}
	u.Spec.RoleARN = "arn:aws:iam::123456789012:role/r"
	if f := iamField(u); f != "spec.upstreamSpec.awsEc2.roleArn" {
		t.Errorf("role: %s", f)
	}
	u.Spec.RoleARN, u.Spec.SecretRef = "", nil
	if f := iamField(u); f != "spec.upstreamSpec.awsEc2" {
		t.Errorf("pod identity: %s", f)
	}
}

func TestRequestInfoOfUpdate(t *testing.T) {
	raw := upstreamJSON(t, "seed-upstream-demo-v1.yaml")
	req := admissionRequest(admissionv1.Update, raw, "alice")
	req.OldObject.Raw = raw
	info := requestInfoOf(req, decoded(t, raw))
	if info.oldSecret == nil || info.oldSecret.String() != "default/gloo-tag-group1" || info.user.Username != "alice" {
		t.Errorf("info %+v", info)
	}
	if info := requestInfoOf(admissionRequest(admissionv1.Create, raw, "alice"), decoded(t, raw)); info.oldSecret != nil {
		t.Errorf("create has an old secret: %+v", info)
	}
}
