package admission

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// The access gate: for a cross-namespace secretRef nothing reads the Secret or calls AWS with it
// before the requesting user's right to read it is established, and nothing the Secret leads to
// reaches a user who may not read it.

const testRoleARN = "arn:aws:iam::123456789012:role/borrowed"

// secretDerived are strings that only someone who may read the test Secret may see: the principal
// its key belongs to, the key id (also masked: it starts with AKIA), the secret key, key lengths.
func secretDerived() []string {
	return []string{testUser, "user/gloo", testAccessKeyID, "AKIA", testSecretKey, "characters", "ec2:DescribeInstances"}
}

// assertNoSecretDerived fails when any output holds something derived from the Secret.
func assertNoSecretDerived(t *testing.T, what string, outputs ...string) {
	t.Helper()
	for _, out := range outputs {
		for _, s := range secretDerived() {
			if strings.Contains(out, s) {
				t.Errorf("%s shows %q: %s", what, s, out)
			}
		}
	}
}

// responseTexts is everything an admission response shows: message, warnings and patch.
func responseTexts(t *testing.T, resp admission.Response) []string {
	t.Helper()
	out := append([]string{}, resp.Warnings...)
	if resp.Result != nil {
		out = append(out, resp.Result.Message, string(resp.Result.Reason))
	}
	for _, p := range resp.Patches {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func setAwsEc2(key string, v any) func(obj map[string]any) {
	return func(obj map[string]any) {
		a := obj["spec"].(map[string]any)["awsEc2"].(map[string]any)
		if v == nil {
			delete(a, key)
			return
		}
		a[key] = v
	}
}

func withDryRun(req admission.Request) admission.Request {
	dry := true
	req.DryRun = &dry
	return req
}

func updateRequest(oldRaw, newRaw []byte, user string) admission.Request {
	req := admissionRequest(admissionv1.Update, newRaw, user, "system:authenticated")
	req.OldObject = runtime.RawExtension{Raw: oldRaw}
	return req
}

func TestAccessGateDeniedUserNeitherReadsTheSecretNorCallsAWS(t *testing.T) {
	cross := upstreamJSON(t, "seed-upstream-demo-v1.yaml") // gloo-system -> default/gloo-tag-group1
	withRole := patchJSON(t, cross, setAwsEc2("roleArn", testRoleARN))
	for _, tc := range []struct {
		name   string
		access *fakeAccess
		code   string
	}{
		{"denied", &fakeAccess{allowed: map[string]bool{}}, string(codes.SecretAccessDenied)},
		{"review failed", &fakeAccess{err: errors.New("the API server is down")}, string(codes.SecretAccessUnverified)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
			secrets := newFakeSecrets(testSecret())
			h, _ := testHandlers(t, aws, secrets, tc.access, DefaultEnforcement())
			for _, raw := range [][]byte{cross, withRole} {
				for _, req := range []admission.Request{
					admissionRequest(admissionv1.Create, raw, "alice"),
					withDryRun(admissionRequest(admissionv1.Create, raw, "alice")),
				} {
					mresp := h.Mutate.Handle(context.Background(), req)
					vresp := h.Validate.Handle(context.Background(), req)
					if vresp.Allowed {
						t.Fatalf("admitted: %+v", vresp)
					}
					if got := denialCodes(vresp.Result.Message); got != tc.code {
						t.Errorf("denial codes %q, want only %s:\n%s", got, tc.code, vresp.Result.Message)
					}
					ann := applyPatch(t, raw, mresp)["metadata"].(map[string]any)["annotations"].(map[string]any)
					if ann[AnnotationPrincipal] != PrincipalUnknown || ann[AnnotationIAMDecision] != DecisionUnknown {
						t.Errorf("mutating patch for a user who may not read the secret: %v", ann)
					}
					assertNoSecretDerived(t, "the response", append(responseTexts(t, vresp), responseTexts(t, mresp)...)...)
				}
			}
			if secrets.Reads() != 0 || aws.Total() != 0 {
				t.Errorf("%d secret reads and %d AWS calls for a user who may not read the secret, want none", secrets.Reads(), aws.Total())
			}
		})
	}
}

// The access problems come first; spec problems that do not depend on the secret are still listed.
func TestAccessGateKeepsSpecProblems(t *testing.T) {
	aws := newFakeAWS("{}")
	secrets := newFakeSecrets(testSecret())
	h, _ := testHandlers(t, aws, secrets, &fakeAccess{allowed: map[string]bool{}}, DefaultEnforcement())
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), setAwsEc2("region", "mars-1"))
	resp := validate(t, h, raw, "alice")
	if got := denialCodes(resp.Result.Message); got != "EC2G401,EC2G202" {
		t.Errorf("codes %q, want EC2G401,EC2G202", got)
	}
	if secrets.Reads() != 0 || aws.Total() != 0 {
		t.Errorf("%d secret reads, %d AWS calls", secrets.Reads(), aws.Total())
	}
}

func TestUpdateIsReauthorizedOnEverySpecChange(t *testing.T) {
	stored := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{
			AnnotationPrincipal: testUser, AnnotationIAMDecision: DecisionAllowed,
			AnnotationIAMSource: SourceLocal, AnnotationConsistency: "permissive-credentials-discerning-filters",
		}
	})
	for name, edit := range map[string]func(map[string]any){
		"filters widened": setAwsEc2("filters", nil),
		"roleArn added":   setAwsEc2("roleArn", testRoleARN),
		"port changed":    setAwsEc2("port", 8080),
		"same spec in the legacy shape": func(obj map[string]any) {
			spec := obj["spec"].(map[string]any)
			spec["upstreamSpec"] = map[string]any{"awsEc2": spec["awsEc2"]}
			delete(spec, "awsEc2")
		},
	} {
		t.Run(name, func(t *testing.T) {
			aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
			secrets := newFakeSecrets(testSecret())
			access := &fakeAccess{allowed: map[string]bool{}}
			h, _ := testHandlers(t, aws, secrets, access, DefaultEnforcement())
			changed := patchJSON(t, stored, edit)
			req := updateRequest(stored, changed, "alice")
			mresp := h.Mutate.Handle(context.Background(), req)
			vresp := h.Validate.Handle(context.Background(), req)
			if vresp.Allowed {
				t.Fatal("a spec change by a user who may not read the secret was admitted")
			}
			if got := denialCodes(vresp.Result.Message); got != string(codes.SecretAccessDenied) {
				t.Errorf("codes %q, want only EC2G401:\n%s", got, vresp.Result.Message)
			}
			assertNoSecretDerived(t, "the response", append(responseTexts(t, vresp), responseTexts(t, mresp)...)...)
			if secrets.Reads() != 0 || aws.Total() != 0 || len(access.asked) == 0 {
				t.Errorf("%d secret reads, %d AWS calls, access asked %v", secrets.Reads(), aws.Total(), access.asked)
			}
		})
	}
}

func TestMetadataOnlyUpdateNeedsNoAccessReview(t *testing.T) {
	stored := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{
			AnnotationPrincipal: testUser, AnnotationIAMDecision: DecisionAllowed,
			AnnotationIAMSource: SourceLocal, AnnotationConsistency: "permissive-credentials-discerning-filters",
		}
	})
	relabeled := patchJSON(t, stored, func(obj map[string]any) {
		md := obj["metadata"].(map[string]any)
		md["labels"] = map[string]any{"team": "a"}
		// A forged decision is put back to what the webhook last found.
		md["annotations"].(map[string]any)[AnnotationIAMDecision] = "forged"
	})
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	secrets := newFakeSecrets(testSecret())
	access := &fakeAccess{allowed: map[string]bool{}}
	h, _ := testHandlers(t, aws, secrets, access, DefaultEnforcement())
	req := updateRequest(stored, relabeled, "alice")
	mresp := h.Mutate.Handle(context.Background(), req)
	vresp := h.Validate.Handle(context.Background(), req)
	if !vresp.Allowed {
		t.Fatalf("a metadata-only update was denied: %s", vresp.Result.Message)
	}
	ann := applyPatch(t, relabeled, mresp)["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann[AnnotationIAMDecision] != DecisionAllowed || ann[AnnotationPrincipal] != testUser {
		t.Errorf("annotations after a metadata-only update %v, want the stored ones", ann)
	}
	for _, p := range mresp.Patches {
		if b, _ := json.Marshal(p); strings.Contains(string(b), testUser) {
			t.Errorf("the patch adds the principal: %s", b)
		}
	}
	if secrets.Reads() != 0 || aws.Total() != 0 || len(access.asked) != 0 {
		t.Errorf("%d secret reads, %d AWS calls, access asked %v; want none", secrets.Reads(), aws.Total(), access.asked)
	}
}

func TestSecretMustOptInToCrossNamespaceUse(t *testing.T) {
	closed := testSecret()
	closed.Annotations = nil
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	h, _ := testHandlers(t, aws, newFakeSecrets(closed), adminAccess(), DefaultEnforcement())
	raw := upstreamJSON(t, "seed-upstream-demo-v1.yaml")
	resp := validate(t, h, raw, "admin")
	if resp.Allowed {
		t.Fatal("a secret that does not opt in was accepted for another namespace")
	}
	if got := denialCodes(resp.Result.Message); got != string(codes.SecretNotShared) {
		t.Errorf("codes %q, want %s", got, codes.SecretNotShared)
	}
	if !strings.Contains(resp.Result.Message, "ec2guard.io/allowed-namespaces: gloo-system") {
		t.Errorf("the denial lacks the fix: %s", resp.Result.Message)
	}
	if aws.Total() != 0 {
		t.Errorf("%d AWS calls with a secret that does not opt in", aws.Total())
	}

	// The same secret in the Upstream's own namespace needs no opt-in.
	closed.Namespace = "gloo-system"
	h, _ = testHandlers(t, aws, newFakeSecrets(closed), adminAccess(), DefaultEnforcement())
	same := patchJSON(t, raw, setAwsEc2("secretRef", map[string]any{"name": "gloo-tag-group1", "namespace": "gloo-system"}))
	if resp := validate(t, h, same, "admin"); !resp.Allowed {
		t.Errorf("same-namespace secret denied: %s", resp.Result.Message)
	}
}

func TestPodIdentityIsOffByDefault(t *testing.T) {
	raw := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), setAwsEc2("secretRef", nil))
	aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
	rv := &Reviewer{Secrets: newFakeSecrets(), Access: adminAccess(), IAM: testEvaluator(t, aws, nil, IAMOptions{})}
	r := rv.Validate(context.Background(), requestInfo{}, decoded(t, raw))
	if got := problemCodes(r.Problems); got != string(codes.PodIdentityNotAllowed) {
		t.Errorf("codes %q, want %s", got, codes.PodIdentityNotAllowed)
	}
	if len(r.Problems) > 0 && !strings.Contains(r.Problems[0].Fix, "--pod-identity-namespaces") {
		t.Errorf("the fix does not name the flag: %+v", r.Problems[0])
	}
	if ann := rv.Annotations(context.Background(), requestInfo{}, decoded(t, raw)); ann[AnnotationPrincipal] != PrincipalUnknown {
		t.Errorf("annotations %v", ann)
	}
	if aws.Total() != 0 {
		t.Errorf("%d AWS calls with the pod identity for a namespace not allowed to use it", aws.Total())
	}

	list, err := ec2.ParseNamespaceList("team-b, gloo-system")
	if err != nil {
		t.Fatal(err)
	}
	rv.PodIdentityNamespaces = list
	r = rv.Validate(context.Background(), requestInfo{}, decoded(t, raw))
	if len(r.Problems) != 0 || r.IAM == nil || r.IAM.Decision != DecisionAllowed {
		t.Errorf("allowed namespace: problems %+v, IAM %+v", r.Problems, r.IAM)
	}
}

// denialCodes are the codes of a denial's problem lines, in order.
func denialCodes(msg string) string {
	var out []string
	for _, l := range strings.Split(msg, "\n")[1:] {
		code, _, _ := strings.Cut(l, " ")
		out = append(out, code)
	}
	return strings.Join(out, ",")
}

// Any metadata-only UPDATE re-evaluates nothing, whatever the Upstream's credentials are.
func TestMetadataOnlyUpdateReadsNothing(t *testing.T) {
	sameNS := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), setAwsEc2("secretRef", map[string]any{"name": "gloo-tag-group1", "namespace": "gloo-system"}))
	noSecret := patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), setAwsEc2("secretRef", nil))
	for name, raw := range map[string][]byte{"same-namespace secret": sameNS, "pod identity": noSecret} {
		t.Run(name, func(t *testing.T) {
			aws := newFakeAWS(string(readTestdata(t, "fixed-policy.json")))
			secrets := newFakeSecrets(testSecret())
			h, _ := testHandlers(t, aws, secrets, adminAccess(), DefaultEnforcement())
			relabeled := patchJSON(t, raw, func(obj map[string]any) { obj["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"} })
			req := updateRequest(raw, relabeled, "alice")
			if resp := h.Validate.Handle(context.Background(), req); !resp.Allowed {
				t.Errorf("denied: %s", resp.Result.Message)
			}
			h.Mutate.Handle(context.Background(), req)
			if secrets.Reads() != 0 || aws.Total() != 0 {
				t.Errorf("%d secret reads, %d AWS calls", secrets.Reads(), aws.Total())
			}
		})
	}
}
