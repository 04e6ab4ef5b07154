package admission

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// validate runs the composed validating handler on raw.
func validate(t *testing.T, h *Handlers, raw []byte, user string) admission.Response {
	t.Helper()
	return h.Validate.Handle(context.Background(), admissionRequest(admissionv1.Create, raw, user, "system:authenticated"))
}

// warningRE: a warning starts with its code and the field relative to awsEc2.
var warningRE = regexp.MustCompile(`^(EC2G[0-9]{3}|[A-Z_]+) secretRef: \S`)

func adminAccess() *fakeAccess { return &fakeAccess{allowed: map[string]bool{"admin": true}} }

func TestValidateSeedPolicyDeniedWithExplanation(t *testing.T) {
	h, reg := testHandlers(t, newFakeAWS(string(readTestdata(t, "seed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	resp := validate(t, h, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
	if resp.Allowed {
		t.Fatal("the seed policy was allowed")
	}
	msg := resp.Result.Message
	t.Logf("denial message:\n%s", msg)
	lines := strings.Split(msg, "\n")
	wantPrefixes := []string{
		"ec2guard: EC2 Upstream gloo-system/ec2-demo-upstream has 3 problems:",
		"EC2G501 spec.upstreamSpec.awsEc2.secretRef: " + testUser + " may not call ec2:DescribeInstances in us-east-1",
		"RESOURCE_MISMATCH spec.upstreamSpec.awsEc2.secretRef: statement #0 of identity policy \"inline policy ec2guard of user/gloo\"",
		"UNSUPPORTED_CONDITION_KEY spec.upstreamSpec.awsEc2.secretRef: statement #0",
	}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("%d lines, want %d", len(lines), len(wantPrefixes))
	}
	for i, want := range wantPrefixes {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want)
		}
		if i > 0 && !strings.Contains(lines[i], " — ") {
			t.Errorf("line %d has no fix: %q", i, lines[i])
		}
	}
	for _, want := range []string{`"Resource": "*"`, "never", "ec2:ResourceTag/Owner", "filters"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q", want)
		}
	}
	if got := counterValue(t, reg, MetricCheckResults, map[string]string{"check": string(codes.CheckIAMDeny), "code": "EC2G501", "outcome": "deny"}); got != 1 {
		t.Errorf("iam-deny denials counted %v, want 1", got)
	}
	if got := counterValue(t, reg, MetricCheckResults, map[string]string{"check": string(codes.CheckSpec), "code": "", "outcome": OutcomePass}); got != 1 {
		t.Errorf("spec passes counted %v, want 1", got)
	}
}

func TestValidateFixedPolicyAllowed(t *testing.T) {
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "fixed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	for _, f := range []string{"seed-upstream-demo.yaml", "seed-upstream-demo-v1.yaml"} {
		resp := validate(t, h, upstreamJSON(t, f), "admin")
		if !resp.Allowed || len(resp.Warnings) != 0 {
			t.Errorf("%s: allowed %v, warnings %v; want allowed without warnings (%v)", f, resp.Allowed, resp.Warnings, resp.Result)
		}
	}
}

// Both shapes of the same Upstream give the same verdict, codes and messages (field paths aside).
func TestValidateShapesAgree(t *testing.T) {
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "seed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	legacy := validate(t, h, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
	v1 := validate(t, h, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), "admin")
	norm := strings.ReplaceAll(legacy.Result.Message, "spec.upstreamSpec.awsEc2", "spec.awsEc2")
	if legacy.Allowed != v1.Allowed || norm != v1.Result.Message {
		t.Errorf("legacy and v1 differ:\n%s\n---\n%s", legacy.Result.Message, v1.Result.Message)
	}
}

func TestValidateSpecAndSecretErrorsListEveryProblem(t *testing.T) {
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	h, _ := testHandlers(t, aws, newFakeSecrets(), adminAccess(), DefaultEnforcement())
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		spec := obj["spec"].(map[string]any)["awsEc2"].(map[string]any)
		spec["filters"] = []any{map[string]any{"key": "a", "kvPair": map[string]any{"key": "b", "value": "c"}}}
	})
	resp := validate(t, h, raw, "admin")
	if resp.Allowed {
		t.Fatal("allowed")
	}
	for _, want := range []string{"EC2G101 spec.awsEc2.filters[0]: ", "EC2G301 spec.awsEc2.secretRef: secret default/gloo-tag-group1 not found"} {
		if !strings.Contains(resp.Result.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, resp.Result.Message)
		}
	}
	if aws.Calls("principal") != 0 {
		t.Errorf("IAM was evaluated without a usable secret")
	}

	bad := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["region"] = "us-east-1a"
	})
	resp = validate(t, h, bad, "admin")
	if resp.Allowed || !strings.Contains(resp.Result.Message, "EC2G202 spec.awsEc2.region") {
		t.Errorf("bad region: allowed %v, message %q", resp.Allowed, resp.Result.Message)
	}
}

func TestValidateEnforcementActions(t *testing.T) {
	seed := string(readTestdata(t, "seed-policy.json"))
	warn, err := DefaultEnforcement().With(codes.CheckIAMDeny, Warn)
	if err != nil {
		t.Fatal(err)
	}
	h, reg := testHandlers(t, newFakeAWS(seed), newFakeSecrets(testSecret()), adminAccess(), warn)
	resp := validate(t, h, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
	if !resp.Allowed || len(resp.Warnings) != 3 {
		t.Fatalf("warn: allowed %v, warnings %q; want allowed with 3 warnings", resp.Allowed, resp.Warnings)
	}
	for _, w := range resp.Warnings {
		if len([]rune(w)) > MaxWarningLength || !warningRE.MatchString(w) {
			t.Errorf("warning %q: want <= %d characters starting with its code", w, MaxWarningLength)
		}
	}
	if got := counterValue(t, reg, MetricCheckResults, map[string]string{"check": string(codes.CheckIAMDeny), "code": "EC2G501", "outcome": "warn"}); got != 1 {
		t.Errorf("warn outcome counted %v, want 1", got)
	}

	off, _ := DefaultEnforcement().With(codes.CheckIAMDeny, Off)
	h, reg = testHandlers(t, newFakeAWS(seed), newFakeSecrets(testSecret()), adminAccess(), off)
	resp = validate(t, h, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
	if !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("off: allowed %v, warnings %q; want allowed silently", resp.Allowed, resp.Warnings)
	}
	if got := counterValue(t, reg, MetricCheckResults, map[string]string{"check": string(codes.CheckIAMDeny), "code": "EC2G501", "outcome": "off"}); got != 1 {
		t.Errorf("off outcome counted %v, want 1", got)
	}
}

func TestValidateCrossNamespaceSecretNeedsAccess(t *testing.T) {
	access := &fakeAccess{allowed: map[string]bool{"bob": true}}
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "fixed-policy.json"))), newFakeSecrets(testSecret()), access, DefaultEnforcement())
	raw := upstreamJSON(t, "seed-upstream-demo-v1.yaml") // gloo-system -> secret in default
	resp := validate(t, h, raw, "alice")
	if resp.Allowed || !strings.Contains(resp.Result.Message, `EC2G401 spec.awsEc2.secretRef: user "alice" may not get secret default/gloo-tag-group1`) {
		t.Fatalf("alice: allowed %v, message %q", resp.Allowed, resp.Result.Message)
	}
	if resp := validate(t, h, raw, "bob"); !resp.Allowed {
		t.Fatalf("bob: denied: %s", resp.Result.Message)
	}

	// An UPDATE that keeps the reference does not ask again; one that changes it does.
	req := admissionRequest(admissionv1.Update, raw, "alice")
	req.OldObject.Raw = raw
	if resp := h.Validate.Handle(context.Background(), req); !resp.Allowed {
		t.Errorf("update keeping the secretRef denied: %s", resp.Result.Message)
	}
	req.OldObject.Raw = patchJSON(t, raw, func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["secretRef"].(map[string]any)["name"] = "other"
	})
	if resp := h.Validate.Handle(context.Background(), req); resp.Allowed {
		t.Error("update changing the secretRef allowed without access")
	}

	access.err = errors.New("connection refused")
	resp = validate(t, h, raw, "bob")
	if resp.Allowed || !strings.Contains(resp.Result.Message, "EC2G402") {
		t.Errorf("failing review: allowed %v, message %q; want EC2G402", resp.Allowed, resp.Result.Message)
	}
}

func TestValidateIAMUnknownWarns(t *testing.T) {
	aws := newFakeAWS("{}")
	aws.prinErr = errors.New("dial tcp 127.0.0.1:5000: connect: connection refused")
	h, _ := testHandlers(t, aws, newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	resp := validate(t, h, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.HasPrefix(resp.Warnings[0], "EC2G503 secretRef: IAM decision unknown") {
		t.Fatalf("allowed %v, warnings %q; want allowed with one EC2G503 warning", resp.Allowed, resp.Warnings)
	}
}

func TestValidateInvalidKeyDenied(t *testing.T) {
	aws := newFakeAWS("{}")
	aws.prinErr = &awsclients.InvalidCredentialsError{Secret: types.NamespacedName{Namespace: "default", Name: "gloo-tag-group1"}, MaskedKeyID: "AKIA****ZZZZ", Code: "InvalidClientTokenId"}
	h, _ := testHandlers(t, aws, newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	resp := validate(t, h, upstreamJSON(t, "seed-upstream-demo.yaml"), "admin")
	if resp.Allowed || !strings.Contains(resp.Result.Message, "EC2G505 spec.upstreamSpec.awsEc2.secretRef: the access key in secret default/gloo-tag-group1 is not valid") {
		t.Fatalf("allowed %v, message %q", resp.Allowed, resp.Result.Message)
	}
	if strings.Contains(resp.Result.Message, testSecretKey) || strings.Contains(resp.Result.Message, testAccessKeyID) {
		t.Error("the message shows a key")
	}
}

func TestValidatePermissiveNoFiltersWarns(t *testing.T) {
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "fixed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		delete(obj["spec"].(map[string]any)["awsEc2"].(map[string]any), "filters")
	})
	resp := validate(t, h, raw, "admin")
	var codes []string
	for _, w := range resp.Warnings {
		codes = append(codes, strings.Fields(w)[0])
	}
	if !resp.Allowed || strings.Join(codes, ",") != "EC2G112,EC2G601" {
		t.Fatalf("allowed %v, warnings %q; want EC2G112 and EC2G601", resp.Allowed, resp.Warnings)
	}
}

// Dry-run requests get the same verdict.
func TestValidateDryRunSameVerdict(t *testing.T) {
	h, _ := testHandlers(t, newFakeAWS(string(readTestdata(t, "seed-policy.json"))), newFakeSecrets(testSecret()), adminAccess(), DefaultEnforcement())
	raw := upstreamJSON(t, "seed-upstream-demo.yaml")
	req := admissionRequest(admissionv1.Create, raw, "admin")
	normal := h.Validate.Handle(context.Background(), req)
	dry := true
	req.DryRun = &dry
	dryResp := h.Validate.Handle(context.Background(), req)
	if normal.Allowed != dryResp.Allowed || normal.Result.Message != dryResp.Result.Message {
		t.Errorf("dry run differs: %v %q vs %v %q", normal.Allowed, normal.Result.Message, dryResp.Allowed, dryResp.Result.Message)
	}
}

func TestDenialMessageSingular(t *testing.T) {
	u := &ec2.Upstream{Namespace: "ns", Name: "n"}
	got := denialMessage(u, []Problem{{Code: "EC2G201", Field: "spec.awsEc2.region", Message: "region is required", Fix: "set region"}})
	want := "ec2guard: EC2 Upstream ns/n has 1 problem:\nEC2G201 spec.awsEc2.region: region is required — set region"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
