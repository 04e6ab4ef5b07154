package iampolicy

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/iamdata"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// Accounts and principals of the documented examples (docs/iam.md).
const (
	account      = "111122223333"
	otherAccount = "444455556666"
	webhookRole  = "arn:aws:iam::" + account + ":role/ec2guard-webhook"
	// webhookSession is how the webhook pod calls AWS with IRSA or EKS Pod Identity.
	webhookSession = "arn:aws:sts::" + account + ":assumed-role/ec2guard-webhook/eks-ec2guard-webhook-1a2b"
	externalID     = "ec2guard-7f3c9a"
)

// mode is one documented identity policy: which binaries need it, when, and the AWS operations
// it exists for. The operations must be ones the code calls (CodeOperations); together with
// noPermissionNeeded the modes must cover everything the code calls.
type mode struct {
	policy   string
	binaries []string
	when     string
	actions  []string
}

var modes = []mode{
	{"pod-identity-upstreams.json", []string{"webhook", "discoverer"},
		"an Upstream without secretRef uses the pod's own identity: DescribeInstances (discovery, the dry-run source) and reading its own role's policies",
		[]string{"ec2:DescribeInstances", "iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion"}},
	{"iam-reader.json", []string{"webhook", "discoverer"},
		"webhook --iam-auditor, discoverer --iam-read-with auditor|upstream-then-auditor: reading any Upstream principal's policies",
		[]string{"iam:GetUser", "iam:ListUserPolicies", "iam:GetUserPolicy", "iam:ListAttachedUserPolicies", "iam:ListGroupsForUser",
			"iam:ListGroupPolicies", "iam:GetGroupPolicy", "iam:ListAttachedGroupPolicies", "iam:GetRole", "iam:ListRolePolicies",
			"iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion"}},
	{"iam-snapshot.json", []string{"webhook"}, "webhook --iam-collection=account-snapshot",
		[]string{"iam:GetAccountAuthorizationDetails"}},
	{"iam-simulator.json", []string{"webhook"}, "webhook --iam-sources with aws-simulator (and --iam-auditor)",
		[]string{"iam:SimulatePrincipalPolicy"}},
	{"assume-upstream-roles.json", []string{"webhook", "discoverer"}, "an Upstream with roleArn and without secretRef",
		[]string{"sts:AssumeRole"}},
}

// linkedNotUsed are operations a binary links (declared in a shared package) but never
// constructs a caller of; each comes with identifiers that must not occur in the binary's own
// packages (cmd/<binary> and its pkg/), so the claim is checked rather than trusted.
var linkedNotUsed = map[string]map[string][]string{
	"discoverer": {
		"iam:SimulatePrincipalPolicy":        {"Simulat"},
		"iam:GetAccountAuthorizationDetails": {"Snapshot", "AuthorizationDetails"},
	},
}

// ownDirs are the packages that decide which AWS calls a binary makes.
var ownDirs = map[string][]string{"webhook": {"cmd/webhook", "pkg/admission"}, "discoverer": {"cmd/discoverer", "pkg/discovery"}}

// noPermissionNeeded are operations AWS allows every caller (no policy can deny them).
var noPermissionNeeded = []string{"sts:GetCallerIdentity"}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// binaryDirs are the repository directories of the packages a command links.
func binaryDirs(t *testing.T, root, binary string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/"+binary)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/%s: %v", binary, err)
	}
	var dirs []string
	for _, d := range strings.Fields(string(out)) {
		if rel, err := filepath.Rel(root, d); err == nil && !strings.HasPrefix(rel, "..") {
			dirs = append(dirs, rel)
		}
	}
	return dirs
}

// packageOperations are the operations named by the files directly in dirs (not subdirectories:
// those are packages of their own, listed when linked).
func packageOperations(t *testing.T, root string, dirs []string) map[string][]string {
	t.Helper()
	ops := map[string][]string{}
	all, err := CodeOperations(root, "pkg", "cmd", "internal")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range all {
		for _, f := range op.Files {
			if slices.Contains(dirs, filepath.Dir(f)) {
				ops[op.Action] = append(ops[op.Action], f)
			}
		}
	}
	return ops
}

// TestModesCoverTheCode: every operation each binary can call is in a documented mode of that
// binary (or needs no permission), and every documented action is one the binary calls.
func TestModesCoverTheCode(t *testing.T) {
	root := repoRoot(t)
	for _, binary := range []string{"webhook", "discoverer"} {
		t.Run(binary, func(t *testing.T) {
			ops := packageOperations(t, root, binaryDirs(t, root, binary))
			if _, ok := ops["ec2:DescribeInstances"]; !ok || len(ops) < 3 {
				t.Fatalf("found only %v: the extraction is broken", ops)
			}
			documented := map[string]bool{}
			for _, a := range noPermissionNeeded {
				documented[a] = true
			}
			for _, m := range modes {
				if !slices.Contains(m.binaries, binary) {
					continue
				}
				for _, a := range m.actions {
					documented[a] = true
					if _, ok := ops[a]; !ok {
						t.Errorf("%s documents %s for the %s, which the code does not call", m.policy, a, binary)
					}
				}
			}
			for action, idents := range linkedNotUsed[binary] {
				documented[action] = true
				for _, dir := range ownDirs[binary] {
					for _, id := range idents {
						if hit := grepDir(t, filepath.Join(root, dir), id); hit != "" {
							t.Errorf("%s is listed as not used by the %s, but %s names %s", action, binary, hit, id)
						}
					}
				}
			}
			for action, files := range ops {
				if !documented[action] {
					t.Errorf("the %s can call %s (%v) but no policy in docs/iam documents it", binary, action, files)
				}
			}
			t.Logf("%s calls %d AWS operations", binary, len(ops))
		})
	}
}

func loadPolicy(t *testing.T, name string) *policycheck.Policy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "iam", name))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policycheck.ParsePolicy(name, data)
	if err != nil {
		t.Fatalf("docs/iam/%s: %v", name, err)
	}
	return p
}

func policySet(t *testing.T, identity []string, resource string) *policycheck.PolicySet {
	t.Helper()
	in := policycheck.PolicySetInput{}
	for _, name := range identity {
		in.Identity = append(in.Identity, policycheck.NamedPolicy{Name: name, Policy: loadPolicy(t, name)})
	}
	if resource != "" {
		in.Resource = &policycheck.NamedPolicy{Name: resource, Policy: loadPolicy(t, resource)}
	}
	ps, err := policycheck.NewPolicySet(in)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// resourcesFor are the resources an action is checked on: the ones ec2guard uses it on.
func resourcesFor(action string) []string {
	user := "arn:aws:iam::" + account + ":user/gloo-reader"
	group := "arn:aws:iam::" + account + ":group/gloo"
	role := webhookRole
	switch _, op, _ := strings.Cut(action, ":"); {
	case op == "ListGroupsForUser", strings.Contains(op, "User"):
		return []string{user}
	case strings.Contains(op, "Group"):
		return []string{group}
	case strings.Contains(op, "Role") && op != "AssumeRole":
		return []string{role}
	case op == "GetPolicy" || op == "GetPolicyVersion":
		return []string{"arn:aws:iam::" + account + ":policy/gloo-ec2", "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess"}
	case op == "SimulatePrincipalPolicy":
		return []string{user, "arn:aws:iam::" + account + ":role/gloo-ec2-reader"}
	case op == "AssumeRole":
		return []string{"arn:aws:iam::" + account + ":role/gloo-ec2-reader"}
	}
	return []string{"*"}
}

// probeResources are every kind of resource "nothing beyond" is checked on.
func probeResources() []string {
	return []string{"*",
		"arn:aws:iam::" + account + ":user/admin", "arn:aws:iam::" + account + ":group/admins",
		"arn:aws:iam::" + account + ":role/admin", "arn:aws:iam::" + account + ":role/ec2guard-webhook",
		"arn:aws:iam::" + account + ":policy/gloo-ec2", "arn:aws:iam::aws:policy/AdministratorAccess",
		"arn:aws:ec2:eu-west-1:" + account + ":instance/i-0123456789abcdef0",
		"arn:aws:iam::" + account + ":role/gloo-ec2-reader"}
}

// sameAccount is a request of ec2guard's role on a resource of its account (AWS managed policies
// are readable like the account's own).
func sameAccount(action, resource string) policycheck.Request {
	return policycheck.Request{Principal: webhookSession, Action: action, Resource: resource, ResourceAccount: account,
		Context: map[string]any{"aws:RequestedRegion": "eu-west-1"}}
}

// grepDir returns the first non-test Go file directly in dir containing s, or "".
func grepDir(t *testing.T, dir, s string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), s) {
			return f
		}
	}
	return ""
}

func evaluate(t *testing.T, e *policycheck.Engine, ps *policycheck.PolicySet, r policycheck.Request) policycheck.Decision {
	t.Helper()
	d, err := e.Evaluate(context.Background(), ps, r)
	if err != nil {
		t.Fatalf("evaluate %s on %s: %v", r.Action, r.Resource, err)
	}
	return d
}

// TestIdentityPolicies: each documented policy allows every operation of its mode (on the
// resources ec2guard uses it on) and no other ec2, iam or sts action on any resource.
func TestIdentityPolicies(t *testing.T) {
	ctx := context.Background()
	e, err := policycheck.NewEngine(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := iamdata.Default()
	if err != nil {
		t.Fatal(err)
	}
	var every []string
	for _, svc := range []string{"ec2", "iam", "sts"} {
		for _, a := range cat.ActionNames(svc) {
			every = append(every, svc+":"+a)
		}
	}
	if len(every) < 500 {
		t.Fatalf("the catalog lists only %d ec2, iam and sts actions", len(every))
	}
	for _, m := range modes {
		t.Run(m.policy, func(t *testing.T) {
			ps := policySet(t, []string{m.policy}, "")
			for _, action := range m.actions {
				for _, res := range resourcesFor(action) {
					r := sameAccount(action, res)
					if d := evaluate(t, e, ps, r); !d.IsAllowed() {
						t.Errorf("%s does not allow %s on %s: %s %+v", m.policy, action, res, d.Result, d.Findings)
					}
				}
			}
			allowed := 0
			for _, action := range every {
				for _, res := range probeResources() {
					r := sameAccount(action, res)
					d := evaluate(t, e, ps, r)
					if !d.IsAllowed() {
						continue
					}
					allowed++
					if !slices.ContainsFunc(append(slices.Clone(m.actions), noPermissionNeeded...), func(a string) bool { return strings.EqualFold(a, action) }) {
						t.Errorf("%s allows %s on %s, which its mode does not call", m.policy, action, res)
					}
				}
			}
			if allowed == 0 {
				t.Errorf("%s allows nothing at all on the probe resources", m.policy)
			}
			for _, deny := range []string{"iam:CreateUser", "iam:PassRole", "iam:AttachRolePolicy", "ec2:TerminateInstances", "ec2:RunInstances"} {
				if d := evaluate(t, e, ps, policycheck.Request{Principal: webhookSession, Action: deny, Resource: "*"}); d.IsAllowed() {
					t.Errorf("%s allows %s", m.policy, deny)
				}
			}
		})
	}
}

// TestNoPermissionNeeded: the engine, like AWS, allows these without any policy.
func TestNoPermissionNeeded(t *testing.T) {
	e, err := policycheck.NewEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range noPermissionNeeded {
		if d := evaluate(t, e, policySet(t, nil, ""), policycheck.Request{Principal: webhookSession, Action: action, Resource: "*"}); !d.IsAllowed() {
			t.Errorf("%s without any policy: %s, want allowed", action, d.Result)
		}
	}
}

// TestCrossAccountRole: an Upstream's roleArn in another account is assumable by ec2guard's role
// when that role's trust policy names it (and, with the ExternalId variant, only with the id);
// other principals and roles outside the documented name pattern are refused.
func TestCrossAccountRole(t *testing.T) {
	e, err := policycheck.NewEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	target := "arn:aws:iam::" + otherAccount + ":role/gloo-ec2-reader"
	assume := func(principal, role string, ctx map[string]any) policycheck.Request {
		return policycheck.Request{Principal: principal, Action: "sts:AssumeRole", Resource: role, ResourceAccount: otherAccount, Context: ctx}
	}
	other := "arn:aws:sts::" + account + ":assumed-role/someone-else/s"
	cases := []struct {
		name, trust string
		req         policycheck.Request
		want        bool
	}{
		{"ec2guard's role", "trust-cross-account.json", assume(webhookSession, target, nil), true},
		{"another principal of the account", "trust-cross-account.json", assume(other, target, nil), false},
		{"a role outside gloo-ec2-*", "trust-cross-account.json", assume(webhookSession, "arn:aws:iam::"+otherAccount+":role/admin", nil), false},
		{"external id given", "trust-cross-account-external-id.json", assume(webhookSession, target, map[string]any{"sts:ExternalId": externalID}), true},
		{"external id missing", "trust-cross-account-external-id.json", assume(webhookSession, target, nil), false},
		{"external id wrong", "trust-cross-account-external-id.json", assume(webhookSession, target, map[string]any{"sts:ExternalId": "guess"}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			identity := []string{"assume-upstream-roles.json"}
			if tc.req.Principal == other {
				identity = nil
			}
			d := evaluate(t, e, policySet(t, identity, tc.trust), tc.req)
			if d.IsAllowed() != tc.want {
				t.Errorf("%s: %s, want allowed=%t (%+v)", tc.name, d.Result, tc.want, d.Findings)
			}
		})
	}
}

// TestPodIdentityTrust: EKS Pod Identity (the pods.eks.amazonaws.com service) may assume and tag
// sessions of ec2guard's role, for clusters of its own account only.
func TestPodIdentityTrust(t *testing.T) {
	e, err := policycheck.NewEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ps := policySet(t, nil, "trust-pod-identity.json")
	for _, action := range []string{"sts:AssumeRole", "sts:TagSession"} {
		for source, want := range map[string]bool{account: true, otherAccount: false} {
			r := policycheck.Request{Principal: "pods.eks.amazonaws.com", Action: action, Resource: webhookRole, ResourceAccount: account,
				Context: map[string]any{"aws:SourceAccount": source}}
			if d := evaluate(t, e, ps, r); d.IsAllowed() != want {
				t.Errorf("%s from a cluster of %s: %s, want allowed=%t (%+v)", action, source, d.Result, want, d.Findings)
			}
		}
	}
	if d := evaluate(t, e, ps, policycheck.Request{Principal: "ec2.amazonaws.com", Action: "sts:AssumeRole", Resource: webhookRole, ResourceAccount: account,
		Context: map[string]any{"aws:SourceAccount": account}}); d.IsAllowed() {
		t.Error("another service may assume ec2guard's role")
	}
}

// TestIRSATrust: the web identity trust names exactly the chart's two ServiceAccounts (default
// release ec2guard in ec2guard-system) and the STS audience. (The engine evaluates IAM and
// service principals, not OIDC web identities, so this one is checked by its content.)
func TestIRSATrust(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "iam", "trust-irsa.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := policycheck.ParsePolicy("trust-irsa.json", data); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Effect    string
			Principal map[string]string
			Action    string
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Statement) != 1 {
		t.Fatalf("%d statements, want 1", len(doc.Statement))
	}
	s := doc.Statement[0]
	provider := s.Principal["Federated"]
	issuer := provider[strings.Index(provider, ":oidc-provider/")+len(":oidc-provider/"):]
	if s.Effect != "Allow" || s.Action != "sts:AssumeRoleWithWebIdentity" || !strings.Contains(provider, ":oidc-provider/") {
		t.Fatalf("statement %+v is not a web identity trust", s)
	}
	eq := s.Condition["StringEquals"]
	if eq[issuer+":aud"] != "sts.amazonaws.com" {
		t.Errorf("aud condition %v, want sts.amazonaws.com", eq[issuer+":aud"])
	}
	subs, _ := eq[issuer+":sub"].([]any)
	want := []any{"system:serviceaccount:ec2guard-system:ec2guard-webhook", "system:serviceaccount:ec2guard-system:ec2guard-discoverer"}
	if !slices.Equal(subs, want) {
		t.Errorf("sub condition %v, want exactly %v", subs, want)
	}
}
