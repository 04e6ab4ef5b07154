package admission

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

func TestReviewSkipsIAMWhenRegionOrSecretUnusable(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	rv := &Reviewer{Secrets: newFakeSecrets(testSecret()), Access: adminAccess(), IAM: testEvaluator(t, aws, nil, IAMOptions{})}
	badRegion := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["region"] = "mars-1"
	}))
	admin := requestInfo{user: authenticationv1.UserInfo{Username: "admin"}}
	r := rv.Validate(context.Background(), admin, badRegion)
	if r.IAM != nil || r.Ran[codes.CheckIAMDeny] || !r.Ran[codes.CheckSecret] || !r.Ran[codes.CheckSpec] || aws.Calls("principal") != 0 {
		t.Errorf("bad region: IAM %+v, ran %v, %d AWS calls", r.IAM, r.Ran, aws.Calls("principal"))
	}
	badFilter := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["filters"] = []any{map[string]any{"key": ""}}
	}))
	r = rv.Validate(context.Background(), admin, badFilter)
	if r.IAM == nil || r.IAM.Decision != DecisionAllowed || !r.Ran[codes.CheckIAMDeny] {
		t.Errorf("a filter error should not stop the IAM check: %+v", r)
	}
}

// A denial lists every problem: the secret is checked even when the region is bad.
func TestReviewChecksTheSecretDespiteSpecErrors(t *testing.T) {
	rv := &Reviewer{Secrets: newFakeSecrets(), Access: adminAccess(), IAM: testEvaluator(t, newFakeAWS("{}"), nil, IAMOptions{})}
	u := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["region"] = ""
	}))
	r := rv.Validate(context.Background(), requestInfo{user: authenticationv1.UserInfo{Username: "admin"}}, u)
	if got := problemCodes(r.Problems); got != "EC2G201,EC2G301" {
		t.Errorf("problems %s, want EC2G201,EC2G301", got)
	}
}

func TestReviewPodIdentityWithoutSecret(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	rv := &Reviewer{Secrets: newFakeSecrets(), Access: adminAccess(), IAM: testEvaluator(t, aws, nil, IAMOptions{}),
		PodIdentityNamespaces: ec2.NamespaceList{"gloo-system"}}
	u := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		delete(obj["spec"].(map[string]any)["awsEc2"].(map[string]any), "secretRef")
	}))
	ann := rv.Annotations(context.Background(), requestInfo{}, u)
	if ann[AnnotationIAMDecision] != DecisionAllowed || ann[AnnotationPrincipal] != testUser {
		t.Errorf("annotations %v", ann)
	}
}
