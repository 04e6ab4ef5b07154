package admission

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
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
	ps := checkSpec(context.Background(), u)
	if problemCodes(ps) != "EC2G101" || ps[0].Check != codes.CheckSpec || ps[0].Field != "spec.awsEc2.filters[0]" || ps[0].Fix == "" {
		t.Errorf("problems %+v", ps)
	}
	if ps := checkSpec(context.Background(), decoded(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"))); len(ps) != 0 {
		t.Errorf("the tutorial Upstream has problems: %+v", ps)
	}
}

func TestCheckSecret(t *testing.T) {
	u := decoded(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"))
	var all []Problem // every problem of every case, searched for the secret key at the end
	check := func(s *corev1.Secret, err error) (ec2.Credentials, []Problem) {
		creds, ps := checkSecret(u, s, err)
		all = append(all, ps...)
		return creds, ps
	}
	creds, ps := check(testSecret(), nil)
	if len(ps) != 0 || creds.AccessKeyID != testAccessKeyID || creds.SecretAccessKey() != testSecretKey {
		t.Errorf("good secret: %+v %v", ps, creds)
	}
	swapped := testSecret()
	swapped.Data["aws_access_key_id"], swapped.Data["aws_secret_access_key"] = swapped.Data["aws_secret_access_key"], swapped.Data["aws_access_key_id"]
	if _, ps := check(swapped, nil); !strings.Contains(problemCodes(ps), "EC2G308") || ps[0].Field != "spec.awsEc2.secretRef" {
		t.Errorf("swapped keys: %+v", ps)
	}
	if _, ps := check(nil, nil); problemCodes(ps) != "EC2G301" || ps[0].Severity != ec2.SeverityError {
		t.Errorf("missing secret: %+v", ps)
	}
	if _, ps := check(nil, &SecretNotWatchedError{Namespace: "default", Namespaces: []string{"gloo-system"}}); problemCodes(ps) != "EC2G403" {
		t.Errorf("unwatched namespace: %+v", ps)
	}
	if _, ps := check(nil, errors.New("timeout")); problemCodes(ps) != "EC2G404" || ps[0].Check != codes.CheckSecret {
		t.Errorf("read error: %+v", ps)
	}
	if len(all) < 4 {
		t.Fatalf("only %d problems collected", len(all))
	}
	for _, p := range all {
		for _, out := range []string{p.Message, p.Fix, p.DenialLine(), p.Warning(), fmt.Sprintf("%+v", p), fmt.Sprint(creds)} {
			if strings.Contains(out, testSecretKey) {
				t.Errorf("an output shows the secret key: %s", out)
			}
		}
	}
}

// Every output of the handlers — denial messages, warnings, patches and every log record at the
// most verbose level — is searched for the secret key, for a good, a swapped and a rejected secret.
func TestHandlersNeverShowTheSecretKey(t *testing.T) {
	swapped := testSecret()
	swapped.Data["aws_access_key_id"], swapped.Data["aws_secret_access_key"] = swapped.Data["aws_secret_access_key"], swapped.Data["aws_access_key_id"]
	rejected := newFakeAWS("{}")
	rejected.prinErr = &awsclients.InvalidCredentialsError{MaskedKeyID: ec2.MaskAccessKeyID(testAccessKeyID), Code: "InvalidClientTokenId"}
	for name, tc := range map[string]struct {
		aws    *fakeAWS
		secret *corev1.Secret
	}{
		"good":     {newFakeAWS(string(readTestdata(t, "seed-policy.json"))), testSecret()},
		"swapped":  {newFakeAWS("{}"), swapped},
		"rejected": {rejected, testSecret()},
	} {
		t.Run(name, func(t *testing.T) {
			var logs strings.Builder
			log := funcr.New(func(prefix, args string) { logs.WriteString(prefix + " " + args + "\n") }, funcr.Options{Verbosity: 10})
			m, _ := testMetrics(t)
			rv := &Reviewer{Secrets: newFakeSecrets(tc.secret), Access: adminAccess(), IAM: testEvaluatorLog(t, tc.aws, m, log)}
			h := NewHandlers(&Validator{Reviewer: rv, Enforcement: DefaultEnforcement(), Metrics: m, Log: log},
				&Mutator{Reviewer: rv, Log: log}, m)
			raw := upstreamJSON(t, "seed-upstream-demo-v1.yaml")
			var outs []string
			for _, req := range []admission.Request{admissionRequest(admissionv1.Create, raw, "admin")} {
				outs = append(outs, responseTexts(t, h.Mutate.Handle(context.Background(), req))...)
				outs = append(outs, responseTexts(t, h.Validate.Handle(context.Background(), req))...)
			}
			outs = append(outs, logs.String())
			if logs.Len() == 0 {
				t.Fatal("nothing logged at the most verbose level")
			}
			for _, out := range outs {
				if strings.Contains(out, testSecretKey) {
					t.Errorf("an output shows the secret key: %s", out)
				}
			}
		})
	}
}

func TestAuthorizeAsksOnlyForCrossNamespaceReferences(t *testing.T) {
	access := &fakeAccess{allowed: map[string]bool{}}
	sameNS := decoded(t, patchJSON(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"), func(obj map[string]any) {
		obj["spec"].(map[string]any)["awsEc2"].(map[string]any)["secretRef"].(map[string]any)["namespace"] = "gloo-system"
	}))
	req := requestInfo{user: authenticationv1.UserInfo{Username: "alice"}}
	if g := authorize(context.Background(), access, nil, req, sameNS); !g.use || g.reviewed || len(g.problems) != 0 || len(access.asked) != 0 {
		t.Errorf("same namespace: %+v, asked %v", g, access.asked)
	}
	cross := decoded(t, upstreamJSON(t, "seed-upstream-demo-v1.yaml"))
	g := authorize(context.Background(), access, nil, req, cross)
	if g.use || !g.reviewed || problemCodes(g.problems) != "EC2G401" || access.asked[0] != "alice default/gloo-tag-group1" {
		t.Errorf("cross namespace: %+v, asked %v", g, access.asked)
	}
}

func TestRequestInfoOfUpdate(t *testing.T) {
	raw := upstreamJSON(t, "seed-upstream-demo-v1.yaml")
	relabeled := patchJSON(t, raw, func(obj map[string]any) {
		obj["metadata"].(map[string]any)["labels"] = map[string]any{"a": "b"}
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{"c": "d"}
	})
	req := admissionRequest(admissionv1.Update, relabeled, "alice")
	req.OldObject.Raw = patchJSON(t, raw, func(obj map[string]any) {
		obj["metadata"].(map[string]any)["annotations"] = map[string]any{AnnotationPrincipal: "p"}
	})
	info := requestInfoOf(req, objectOf(t, req.Object.Raw))
	if !info.metadataOnly || info.oldAnnotations[AnnotationPrincipal] != "p" || info.user.Username != "alice" {
		t.Errorf("metadata-only update: %+v", info)
	}
	req.Object.Raw = patchJSON(t, raw, setAwsEc2("port", 81))
	if info := requestInfoOf(req, objectOf(t, req.Object.Raw)); info.metadataOnly {
		t.Errorf("a port change is metadata-only: %+v", info)
	}
	req.OldObject.Raw = []byte("{not json")
	if info := requestInfoOf(req, objectOf(t, req.Object.Raw)); info.metadataOnly {
		t.Errorf("an undecodable old object counts as unchanged: %+v", info)
	}
	if info := requestInfoOf(admissionRequest(admissionv1.Create, raw, "alice"), objectOf(t, raw)); info.metadataOnly {
		t.Errorf("a create is metadata-only: %+v", info)
	}
}
