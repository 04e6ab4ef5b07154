package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	iamverdict "github.com/ec2guard/ec2guard/pkg/verdict"
)

// The shared table test of the one IAM pipeline (pkg/verdict): every example in examples/ and
// examples/broken/, under a set of IAM results, goes through the three front ends — the webhook's
// Reviewer (its access gate, spec and Secret checks, then the pipeline), the discoverer's audit
// (discovery.GroupAudit) and this CLI's check (evaluateWith) — and each must report the same
// principal, decision, source, consistency class and IAM codes with the same outcome.
//
// Where a front end cannot see something, the same IAM result is fed through each front end's own
// adapter, so that what is compared is the pipeline: the CLI has no AWS and the discoverer no
// requesting user, and the webhook's IAM evaluator needs AWS (its sources are tested in
// pkg/admission and, against moto, in test/e2e/webhook). The results come from the front ends'
// real adapters where they run here — the CLI's policy files through the engine, the discoverer's
// audit of a listing outcome — and from hand-made results for the edge cases.
//
// What legitimately differs: the webhook does not evaluate IAM when the Secret is unusable (it
// needs the credentials; the CLI evaluates --policy documents without them). When the webhook
// evaluates, the CLI must too.

type fixedIAM struct{ res *iamverdict.IAMResult }

func (f fixedIAM) Result(context.Context, awsclients.Request) *admission.IAMResult { return f.res }

// mapSecrets serves the examples' Secrets as shared with every namespace (the examples reference
// the seed Secret across namespaces; sharing is pkg/admission's and the discoverer's own check).
type mapSecrets map[types.NamespacedName]*corev1.Secret

func (m mapSecrets) Secret(_ context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
	s := m[nn]
	if s == nil {
		return nil, nil
	}
	s = s.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[ec2.AnnotationSecretAllowedNamespaces] = "*"
	return s, nil
}

type allowAll struct{}

func (allowAll) CanGetSecret(context.Context, authenticationv1.UserInfo, types.NamespacedName) (bool, string, error) {
	return true, "", nil
}

// seen is what one front end reported.
type seen struct {
	evaluated                            bool
	principal, decision, source, consist string
	codes                                []string // "CODE/deny" or "CODE/warn"
}

func (s seen) String() string {
	return fmt.Sprintf("evaluated=%v principal=%q decision=%s source=%s consistency=%s codes=%v",
		s.evaluated, s.principal, s.decision, s.source, s.consist, s.codes)
}

func isIAMCheck(c admission.Check) bool {
	return slices.Contains(iamverdict.Checks(), iamverdict.Check(c))
}

func viaWebhook(t *testing.T, ctx context.Context, in *inputs, u *ec2.Upstream, res *iamverdict.IAMResult) seen {
	t.Helper()
	rv := &admission.Reviewer{Secrets: mapSecrets(in.secrets), Access: allowAll{}, IAM: fixedIAM{res}, PodIdentityNamespaces: ec2.NamespaceList{"*"}}
	r := rv.ValidateFor(ctx, authenticationv1.UserInfo{Username: "alice"}, u)
	if r.IAM == nil {
		return seen{}
	}
	s := seen{evaluated: true, principal: r.IAM.Principal, decision: r.IAM.Decision, source: r.IAM.Source, consist: r.Consistency}
	for _, p := range r.Problems {
		if isIAMCheck(p.Check) {
			s.codes = append(s.codes, p.Code+"/"+string(p.Outcome(admission.DefaultAction(p.Check))))
		}
	}
	return s
}

func viaCLI(ctx context.Context, u *ec2.Upstream, res *iamverdict.IAMResult) seen {
	r := evaluateWith(ctx, u, u.Check(), iamverdict.SourceFunc(func(context.Context, *ec2.Upstream) *iamverdict.IAMResult { return res }))
	if r.Decision == iamNotEvaluated {
		return seen{}
	}
	s := seen{evaluated: true, principal: r.Principal, decision: r.Decision, source: r.Source, consist: r.Consistency}
	for _, f := range r.Findings {
		outcome := admission.Deny
		if f.Severity == ec2.SeverityWarning {
			outcome = admission.Warn
		}
		s.codes = append(s.codes, string(f.Code)+"/"+string(outcome))
	}
	return s
}

func viaDiscoverer(u *ec2.Upstream, res *iamverdict.IAMResult) seen {
	a := discovery.AuditOf(res)
	v := a.Verdict(u)
	s := seen{evaluated: true, principal: a.IAM.Principal, decision: a.IAM.Decision, source: a.IAM.Source, consist: v.Consistency}
	for _, p := range v.Problems {
		s.codes = append(s.codes, p.Code+"/"+string(admission.Problem{Severity: p.Severity}.Outcome(admission.DefaultAction(admission.Check(p.Check)))))
	}
	return s
}

// iamCase makes the IAM result for an Upstream (a fresh one per front end: results are not shared
// across front ends, so that none can change another's).
type iamCase struct {
	name string
	res  func(t *testing.T, u *ec2.Upstream) *iamverdict.IAMResult
	// want, when set, is checked against the webhook's answer (the others must equal it).
	wantDecision, wantConsistency string
	wantCodes                     []string // codes that must be among the reported ones
}

func policyCase(name, file string) iamCase {
	return iamCase{name: name, res: func(t *testing.T, u *ec2.Upstream) *iamverdict.IAMResult {
		o, err := newOfflineIAM(context.Background(), []string{filepath.Join("..", "..", "examples", file)})
		if err != nil {
			t.Fatal(err)
		}
		return o.IAM(context.Background(), u)
	}}
}

func listingCase(name string, listErr error, decision, consistency string, codes ...string) iamCase {
	return iamCase{name: name, wantDecision: decision, wantConsistency: consistency, wantCodes: codes,
		res: func(_ *testing.T, _ *ec2.Upstream) *iamverdict.IAMResult {
			var a *discovery.Auditor // the listing source only: nothing here reaches AWS
			return a.Audit(context.Background(), nil, "us-east-1", listErr).Result()
		}}
}

func handCase(name string, decision, consistency string, codes []string, mk func() *iamverdict.IAMResult) iamCase {
	return iamCase{name: name, wantDecision: decision, wantConsistency: consistency, wantCodes: codes,
		res: func(*testing.T, *ec2.Upstream) *iamverdict.IAMResult { return mk() }}
}

func frontEndCases() []iamCase {
	const principal = "arn:aws:iam::111122223333:user/gloo"
	return []iamCase{
		policyCase("seed policy", "seed-policy.json"),
		policyCase("fixed policy", "fixed-policy.json"),
		listingCase("listing allowed", nil, iamverdict.DecisionAllowed, ""),
		listingCase("listing unauthorized", &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "no"},
			iamverdict.DecisionImplicitDeny, string(policycheck.CredentialsDeny), "EC2G501/deny"),
		listingCase("credentials rejected", &smithy.GenericAPIError{Code: "AuthFailure", Message: "AWS was not able to validate the provided access credentials"},
			iamverdict.DecisionUnknown, string(policycheck.CredentialsDeny), "EC2G505/deny"),
		listingCase("listing unreachable", errors.New("dial tcp 127.0.0.1:1: connection refused"),
			iamverdict.DecisionUnknown, iamverdict.ConsistencyUnknown, "EC2G503/warn"),
		handCase("unknown decision", iamverdict.DecisionUnknown, iamverdict.ConsistencyUnknown, []string{"EC2G503/warn"}, func() *iamverdict.IAMResult {
			return iamverdict.Unknown("dry-run: AWS did not answer within the IAM deadline of 2s")
		}),
		handCase("explicit deny", iamverdict.DecisionExplicitDeny, string(policycheck.CredentialsDeny), []string{"EC2G502/deny"}, func() *iamverdict.IAMResult {
			r := &iamverdict.IAMResult{Principal: principal, Sources: []iamverdict.SourceResult{
				{Source: iamverdict.SourceAWSSimulator, Decision: iamverdict.DecisionExplicitDeny, Reason: "the IAM policy simulator finds an explicit deny"}}}
			iamverdict.Decide(r)
			return r
		}),
		handCase("assume role denied", iamverdict.DecisionUnknown, string(policycheck.CredentialsDeny), []string{"EC2G504/deny"}, func() *iamverdict.IAMResult {
			r := iamverdict.Unknown("roleArn cannot be assumed")
			r.Credentials = iamverdict.AssumeRoleDenied("AccessDenied: not authorized to perform sts:AssumeRole", "arn:aws:iam::111122223333:role/gloo")
			return r
		}),
		handCase("dedicated account", iamverdict.DecisionAllowed, "", nil, func() *iamverdict.IAMResult {
			r := &iamverdict.IAMResult{Principal: principal, DedicatedAccount: true, Sources: []iamverdict.SourceResult{
				{Source: iamverdict.SourceLocal, Decision: iamverdict.DecisionAllowed}}}
			iamverdict.Decide(r)
			return r
		}),
		handCase("sources disagree", iamverdict.DecisionAllowed, "", []string{"EC2G506/warn"}, func() *iamverdict.IAMResult {
			r := &iamverdict.IAMResult{Principal: principal, Sources: []iamverdict.SourceResult{
				{Source: iamverdict.SourceDryRun, Decision: iamverdict.DecisionAllowed},
				{Source: iamverdict.SourceLocal, Decision: iamverdict.DecisionImplicitDeny, Reason: "implicit deny"}}}
			iamverdict.Decide(r)
			return r
		}),
	}
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"../../examples/*.yaml", "../../examples/broken/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d examples", len(out))
	}
	return out
}

func TestFrontEndsAgree(t *testing.T) {
	ctx := context.Background()
	cases := frontEndCases()
	evaluated := map[string]int{} // case name -> Upstreams the webhook evaluated IAM for
	sawNoFilters := false
	for _, file := range exampleFiles(t) {
		if strings.HasSuffix(file, "seed-secret.yaml") {
			continue
		}
		in, err := readInputs([]string{file, "../../examples/seed-secret.yaml"}, false, "", nil, io.Discard)
		if err != nil {
			// Examples of input errors (a key written twice, ...) never reach a verdict.
			continue
		}
		for _, ui := range in.upstreams {
			u := ui.upstream
			for _, c := range cases {
				t.Run(filepath.Base(file)+"/"+c.name, func(t *testing.T) {
					hook := viaWebhook(t, ctx, in, u, c.res(t, u))
					cli := viaCLI(ctx, u, c.res(t, u))
					if !hook.evaluated {
						return // no IAM verdict from the webhook (spec or Secret errors); see above
					}
					evaluated[c.name]++
					if !cli.evaluated {
						t.Fatalf("the webhook evaluated IAM (%s) and the CLI did not", hook)
					}
					disc := viaDiscoverer(u, c.res(t, u))
					if hook.String() != cli.String() || hook.String() != disc.String() {
						t.Fatalf("front ends disagree:\n webhook    %s\n cli        %s\n discoverer %s", hook, cli, disc)
					}
					if c.wantDecision != "" && hook.decision != c.wantDecision {
						t.Errorf("decision %s, want %s", hook.decision, c.wantDecision)
					}
					if c.wantConsistency != "" && hook.consist != c.wantConsistency {
						t.Errorf("consistency %s, want %s", hook.consist, c.wantConsistency)
					}
					for _, code := range c.wantCodes {
						if !slices.Contains(hook.codes, code) {
							t.Errorf("codes %v lack %s", hook.codes, code)
						}
					}
					if len(u.Spec.Filters) == 0 && hook.decision == iamverdict.DecisionAllowed {
						sawNoFilters = true
						want, want601 := policycheck.PermissiveCredentialsNoFilters, true
						if c.res(t, u).DedicatedAccount {
							want, want601 = policycheck.RestrictiveCredentialsNoFilters, false
						}
						if hook.consist != string(want) || slices.Contains(hook.codes, "EC2G601/warn") != want601 {
							t.Errorf("no filters and allowed: %s; want %s, EC2G601 %v", hook, want, want601)
						}
					}
				})
			}
		}
	}
	for _, c := range cases {
		if evaluated[c.name] == 0 {
			t.Errorf("case %q reached no front end's IAM verdict", c.name)
		}
	}
	if !sawNoFilters {
		t.Error("no example had no filters with allowed credentials")
	}
}
