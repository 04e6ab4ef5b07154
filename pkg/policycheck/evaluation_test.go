package policycheck

import (
	"context"
	"strings"
	"sync"
	"testing"
)

// These table tests check the engine against the rules of AWS's documentation, one rule per case,
// each citing the IAM User Guide page (and section) it checks. Abbreviations:
//
//	EVAL    reference_policies_evaluation-logic.html (Policy evaluation logic)
//	DENYALW reference_policies_evaluation-logic_policy-eval-denyallow.html (How AWS enforcement
//	        code logic evaluates requests to allow or deny access)
//	BASICS  reference_policies_evaluation-logic_policy-eval-basics.html (requests within a single account)
//	XACCT   reference_policies_evaluation-logic-cross-account.html (Cross-account policy evaluation)
//	BOUND   access_policies_boundaries.html (Permissions boundaries for IAM entities)
//	SESSION access_policies.html#policies_session (Session policies)
//	SCP     organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html
//	RCP     organizations/latest/userguide/orgs_manage_policies_rcps.html
//	ACTION  reference_policies_elements_action.html; NOTACT reference_policies_elements_notaction.html
//	RES     reference_policies_elements_resource.html; NOTRES reference_policies_elements_notresource.html
//	PRIN    reference_policies_elements_principal.html; NOTPRIN reference_policies_elements_notprincipal.html
//	COND    reference_policies_elements_condition_operators.html (Condition operators)
//	MULTI   reference_policies_condition-logic-multiple-context-keys-or-values.html
//	SINGLE  reference_policies_condition-single-vs-multi-valued-context-keys.html
//	VARS    reference_policies_variables.html (Policy variables); VERSION reference_policies_elements_version.html
//	EC2     service-authorization reference, Amazon EC2 (DescribeInstances has no resource types)
//	STS     STS API reference, GetCallerIdentity ("No permissions are required")
//	ROLES   id_roles_compare-resource-policies.html (How IAM roles differ from resource-based policies)

const (
	acct    = "111122223333"
	other   = "444455556666"
	user    = "arn:aws:iam::111122223333:user/gloo"
	role    = "arn:aws:iam::111122223333:role/app"
	session = "arn:aws:sts::111122223333:assumed-role/app/s1"
	bucket  = "arn:aws:s3:::amzn-s3-demo-bucket/gloo/file.txt"
)

// pol wraps statements into a 2012-10-17 policy.
func pol(statements ...string) string {
	return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
}

func allowStmt(action, resource string) string {
	return `{"Effect":"Allow","Action":"` + action + `","Resource":"` + resource + `"}`
}

func denyStmt(action, resource string) string {
	return `{"Effect":"Deny","Action":"` + action + `","Resource":"` + resource + `"}`
}

// withCond adds a Condition block to a statement.
func withCond(stmt, cond string) string {
	return strings.TrimSuffix(stmt, "}") + `,"Condition":` + cond + `}`
}

func principalStmt(effect, action, principal string) string {
	return `{"Effect":"` + effect + `","Action":"` + action + `","Resource":"*","Principal":` + principal + `}`
}

type evalCase struct {
	name     string
	identity []string
	boundary string
	session  string
	resource string
	scps     [][]string
	rcps     [][]string
	req      Request
	want     string
}

func describe(region string) Request {
	return Request{Principal: user, Action: "ec2:DescribeInstances", Resource: "*",
		Context: map[string]any{"aws:RequestedRegion": region}}
}

func getObject(principal string, ctx map[string]any) Request {
	return Request{Principal: principal, Action: "s3:GetObject", Resource: bucket, ResourceAccount: acct, Context: ctx}
}

func withCtx(r Request, kv ...any) Request {
	c := map[string]any{}
	for k, v := range r.Context {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i].(string)] = kv[i+1]
	}
	r.Context = c
	return r
}

var (
	sharedEngine     *Engine
	sharedEngineErr  error
	sharedEngineOnce sync.Once
)

// realEngine is an engine with the generated iam-data catalog, shared by the tests.
func realEngine(t testing.TB) *Engine {
	t.Helper()
	sharedEngineOnce.Do(func() { sharedEngine, sharedEngineErr = NewEngine(context.Background()) })
	if sharedEngineErr != nil {
		t.Fatal(sharedEngineErr)
	}
	return sharedEngine
}

func (c evalCase) policySet(t *testing.T) *PolicySet {
	t.Helper()
	var in PolicySetInput
	for i, p := range c.identity {
		in.Identity = append(in.Identity, mustPolicy(t, "identity"+string(rune('0'+i)), p))
	}
	opt := func(name, text string) *NamedPolicy {
		if text == "" {
			return nil
		}
		np := mustPolicy(t, name, text)
		return &np
	}
	in.Boundary = opt("boundary", c.boundary)
	in.Session = opt("session", c.session)
	in.Resource = opt("resource", c.resource)
	for _, level := range c.scps {
		var l []NamedPolicy
		for _, p := range level {
			l = append(l, mustPolicy(t, "scp", p))
		}
		in.SCPs = append(in.SCPs, l)
	}
	for _, level := range c.rcps {
		var l []NamedPolicy
		for _, p := range level {
			l = append(l, mustPolicy(t, "rcp", p))
		}
		in.RCPs = append(in.RCPs, l)
	}
	ps, err := NewPolicySet(in)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	e := realEngine(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Evaluate(context.Background(), c.policySet(t), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if d.Result != c.want {
				t.Errorf("got %s, want %s\n%s", d.Result, c.want, d.Summary())
			}
		})
	}
}

var allowDescribe = pol(allowStmt("ec2:DescribeInstances", "*"))

func TestEvaluationLogic(t *testing.T) {
	rpUser := pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"`+user+`"}`))
	runEvalCases(t, []evalCase{
		{name: "DENYALW: by default all requests are implicitly denied", req: describe("us-east-1"), want: ImplicitDeny},
		{name: "DENYALW: an Allow in an identity policy allows", identity: []string{allowDescribe}, req: describe("us-east-1"), want: Allowed},
		{name: "DENYALW: an explicit deny overrides an allow (same policy)",
			identity: []string{pol(allowStmt("ec2:DescribeInstances", "*"), denyStmt("ec2:*", "*"))}, req: describe("us-east-1"), want: ExplicitDeny},
		{name: "DENYALW: an explicit deny in any policy overrides allows in others",
			identity: []string{allowDescribe, pol(denyStmt("*", "*"))}, req: describe("us-east-1"), want: ExplicitDeny},
		{name: "EVAL: statements of several identity policies are a union",
			identity: []string{pol(allowStmt("s3:*", "*")), allowDescribe}, req: describe("us-east-1"), want: Allowed},
		{name: "BASICS: same account, a resource-based policy alone allows",
			resource: rpUser, req: getObject(user, nil), want: Allowed},
		{name: "BASICS: same account, an identity policy alone allows (resource policy silent)",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, resource: pol(principalStmt("Allow", "s3:PutObject", `{"AWS":"`+user+`"}`)), req: getObject(user, nil), want: Allowed},
		{name: "DENYALW: a Deny in the resource-based policy overrides an identity Allow",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, resource: pol(principalStmt("Deny", "s3:GetObject", `"*"`)), req: getObject(user, nil), want: ExplicitDeny},
		{name: "PRIN: a resource policy statement for another principal does not apply",
			resource: pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"arn:aws:iam::111122223333:user/other"}`)), req: getObject(user, nil), want: ImplicitDeny},
		{name: "XACCT: cross-account needs the identity policy and the resource policy — identity only",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, req: withAccount(getObject(user, nil), other), want: ImplicitDeny},
		{name: "XACCT: cross-account needs both — resource policy only",
			resource: rpUser, req: withAccount(getObject(user, nil), other), want: ImplicitDeny},
		{name: "XACCT: cross-account with both allows",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, resource: rpUser, req: withAccount(getObject(user, nil), other), want: Allowed},
		{name: "XACCT/PRIN: a resource policy trusting the principal's account plus an identity Allow",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, resource: pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"`+acct+`"}`)), req: withAccount(getObject(user, nil), other), want: Allowed},
		{name: "PRIN: an account principal (root ARN) does not grant by itself within the account",
			resource: pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"arn:aws:iam::`+acct+`:root"}`)), req: getObject(user, nil), want: ImplicitDeny},
	})
}

func withAccount(r Request, account string) Request { r.ResourceAccount = account; return r }

func TestBoundariesSessionsOrganizations(t *testing.T) {
	s3Only := pol(allowStmt("s3:*", "*"))
	runEvalCases(t, []evalCase{
		{name: "BOUND: effective permissions are the intersection — boundary silent", identity: []string{allowDescribe}, boundary: s3Only, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "BOUND: both allow", identity: []string{allowDescribe}, boundary: pol(allowStmt("ec2:*", "*")), req: describe("us-east-1"), want: Allowed},
		{name: "BOUND: a boundary never grants by itself", boundary: pol(allowStmt("ec2:*", "*")), req: describe("us-east-1"), want: ImplicitDeny},
		{name: "BOUND: a Deny in the boundary is an explicit deny", identity: []string{allowDescribe}, boundary: pol(allowStmt("*", "*"), denyStmt("ec2:Describe*", "*")), req: describe("us-east-1"), want: ExplicitDeny},
		{name: "DENYALW/BOUND: a same-account resource policy naming the IAM user is not limited by the boundary",
			boundary: s3Only + "", resource: pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"`+user+`"}`)), req: getObject(user, nil), want: Allowed},
		{name: "DENYALW/BOUND: ... but an implicit deny in the boundary limits a resource policy naming the role (session request)",
			boundary: pol(allowStmt("ec2:*", "*")), resource: pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"`+role+`"}`)), req: getObject(session, nil), want: ImplicitDeny},
		{name: "DENYALW/BOUND: a resource policy naming the role session ARN is not limited by the boundary",
			boundary: pol(allowStmt("ec2:*", "*")), resource: pol(principalStmt("Allow", "s3:GetObject", `{"AWS":"`+session+`"}`)), req: getObject(session, nil), want: Allowed},
		{name: "SESSION: the session policy limits the identity policy", identity: []string{allowDescribe}, session: s3Only, req: asSession(describe("us-east-1")), want: ImplicitDeny},
		{name: "SESSION: both allow", identity: []string{allowDescribe}, session: pol(allowStmt("ec2:DescribeInstances", "*")), req: asSession(describe("us-east-1")), want: Allowed},
		{name: "SESSION: a session policy never grants by itself", session: pol(allowStmt("*", "*")), req: asSession(describe("us-east-1")), want: ImplicitDeny},
		{name: "SESSION: a Deny in the session policy is explicit", identity: []string{allowDescribe}, session: pol(allowStmt("*", "*"), denyStmt("ec2:*", "*")), req: asSession(describe("us-east-1")), want: ExplicitDeny},
		{name: "SCP: an SCP must allow", identity: []string{allowDescribe}, scps: [][]string{{s3Only}}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "SCP: every level must allow (root allows, OU does not)", identity: []string{allowDescribe},
			scps: [][]string{{pol(allowStmt("*", "*"))}, {s3Only}}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "SCP: every level allows", identity: []string{allowDescribe},
			scps: [][]string{{pol(allowStmt("*", "*"))}, {s3Only, pol(allowStmt("ec2:Describe*", "*"))}}, req: describe("us-east-1"), want: Allowed},
		{name: "SCP: an SCP never grants by itself", scps: [][]string{{pol(allowStmt("*", "*"))}}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "SCP: a Deny at any level is explicit", identity: []string{allowDescribe},
			scps: [][]string{{pol(allowStmt("*", "*"))}, {pol(allowStmt("*", "*"), denyStmt("ec2:*", "*"))}}, req: describe("us-east-1"), want: ExplicitDeny},
		{name: "RCP: RCPFullAWSAccess is implicit: RCPs only deny (S3)",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, rcps: [][]string{{}}, req: getObject(user, nil), want: Allowed},
		{name: "RCP: an RCP Deny applies to S3",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, rcps: [][]string{{rcpDeny("s3:GetObject")}}, req: getObject(user, nil), want: ExplicitDeny},
		{name: "RCP: RCPs do not apply to EC2 (not in the list of services that support RCPs)",
			identity: []string{allowDescribe}, rcps: [][]string{{rcpDeny("ec2:DescribeInstances")}}, req: describe("us-east-1"), want: Allowed},
		{name: "ROLES: same account, a trust policy naming the principal allows sts:AssumeRole",
			resource: pol(principalStmt("Allow", "sts:AssumeRole", `{"AWS":"`+user+`"}`)), req: assumeRole(), want: Allowed},
		{name: "ROLES: a trust policy naming the account needs an identity Allow too (no identity Allow)",
			resource: pol(principalStmt("Allow", "sts:AssumeRole", `{"AWS":"`+acct+`"}`)), req: assumeRole(), want: ImplicitDeny},
		{name: "ROLES: a trust policy naming the account plus an identity Allow",
			identity: []string{pol(allowStmt("sts:AssumeRole", role))}, resource: pol(principalStmt("Allow", "sts:AssumeRole", `{"AWS":"`+acct+`"}`)), req: assumeRole(), want: Allowed},
		{name: "ROLES: an identity Allow alone does not let a principal assume a role whose trust policy does not trust it",
			identity: []string{pol(allowStmt("sts:AssumeRole", role))}, resource: pol(principalStmt("Allow", "sts:AssumeRole", `{"Service":"ec2.amazonaws.com"}`)), req: assumeRole(), want: ImplicitDeny},
		{name: "STS: sts:GetCallerIdentity needs no permission and cannot be denied",
			identity: []string{pol(denyStmt("*", "*"))}, req: Request{Principal: user, Action: "sts:GetCallerIdentity"}, want: Allowed},
		{name: "NOTPRIN: Allow with NotPrincipal applies to everyone not listed",
			resource: pol(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/other"}}`), req: getObject(user, nil), want: Allowed},
		{name: "NOTPRIN: Deny with NotPrincipal spares the listed principal",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, resource: pol(`{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","NotPrincipal":{"AWS":"` + user + `"}}`), req: getObject(user, nil), want: Allowed},
		{name: "NOTPRIN/BOUND: Deny with NotPrincipal always denies a principal with a permissions boundary",
			identity: []string{pol(allowStmt("s3:GetObject", "*"))}, boundary: pol(allowStmt("s3:*", "*")),
			resource: pol(`{"Effect":"Deny","Action":"s3:GetObject","Resource":"*","NotPrincipal":{"AWS":"` + user + `"}}`), req: getObject(user, nil), want: ExplicitDeny},
	})
}

func rcpDeny(action string) string {
	return pol(`{"Effect":"Deny","Principal":"*","Action":"` + action + `","Resource":"*"}`)
}

func asSession(r Request) Request { r.Principal = session; return r }

func assumeRole() Request {
	return Request{Principal: user, Action: "sts:AssumeRole", Resource: role}
}

func TestActionsAndResources(t *testing.T) {
	runEvalCases(t, []evalCase{
		{name: "ACTION: action names are case-insensitive", identity: []string{pol(allowStmt("EC2:describeINSTANCES", "*"))}, req: describe("us-east-1"), want: Allowed},
		{name: "ACTION: * wildcard", identity: []string{pol(allowStmt("ec2:Describe*", "*"))}, req: describe("us-east-1"), want: Allowed},
		{name: "ACTION: ? wildcard matches one character", identity: []string{pol(allowStmt("ec2:DescribeInstance?", "*"))}, req: describe("us-east-1"), want: Allowed},
		{name: "ACTION: ? does not match zero characters", identity: []string{pol(allowStmt("ec2:DescribeInstances?", "*"))}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "ACTION: another service does not match", identity: []string{pol(allowStmt("s3:DescribeInstances", "*"))}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "NOTACT: Allow with NotAction allows every other action", identity: []string{pol(`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`)}, req: describe("us-east-1"), want: Allowed},
		{name: "NOTACT: Allow with NotAction does not allow the listed actions", identity: []string{pol(`{"Effect":"Allow","NotAction":["iam:*","ec2:Describe*"],"Resource":"*"}`)}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "NOTACT: Deny with NotAction denies every other action", identity: []string{allowDescribe, pol(`{"Effect":"Deny","NotAction":"s3:*","Resource":"*"}`)}, req: describe("us-east-1"), want: ExplicitDeny},
		{name: "EC2/RES: a wildcard-only action is not granted by a statement scoped to ARNs",
			identity: []string{pol(allowStmt("ec2:DescribeInstances", "arn:aws:ec2:us-east-1:111122223333:instance/*"))}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "EC2/RES: nor by arn:aws:ec2:*:*:* (only \"*\" covers it)",
			identity: []string{pol(allowStmt("ec2:DescribeInstances", "arn:aws:ec2:*:*:*"))}, req: describe("us-east-1"), want: ImplicitDeny},
		{name: "EC2/RES: a Deny scoped to ARNs denies nothing for a wildcard-only action",
			identity: []string{allowDescribe, pol(denyStmt("ec2:DescribeInstances", "arn:aws:ec2:*:*:instance/*"))}, req: describe("us-east-1"), want: Allowed},
		{name: "EC2: a wildcard-only action is evaluated against \"*\" whatever resource is asked",
			identity: []string{allowDescribe}, req: Request{Principal: user, Action: "ec2:DescribeInstances", Resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-1"}, want: Allowed},
		{name: "RES: resource ARNs match with * in the resource part", identity: []string{pol(allowStmt("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/*"))}, req: getObject(user, nil), want: Allowed},
		{name: "RES: resource matching is case-sensitive", identity: []string{pol(allowStmt("s3:GetObject", "arn:aws:s3:::AMZN-S3-DEMO-BUCKET/*"))}, req: getObject(user, nil), want: ImplicitDeny},
		{name: "RES: ? matches one character", identity: []string{pol(allowStmt("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/gloo/file.tx?"))}, req: getObject(user, nil), want: Allowed},
		{name: "RES: * within a segment does not cross a colon", identity: []string{pol(allowStmt("ec2:StartInstances", "arn:aws:ec2:*:instance/*"))},
			req: Request{Principal: user, Action: "ec2:StartInstances", Resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-1"}, want: ImplicitDeny},
		{name: "RES: segments with * match", identity: []string{pol(allowStmt("ec2:StartInstances", "arn:aws:ec2:*:*:instance/*"))},
			req: Request{Principal: user, Action: "ec2:StartInstances", Resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-1"}, want: Allowed},
		{name: "NOTRES: Allow with NotResource allows other resources", identity: []string{pol(`{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::secret/*"}`)}, req: getObject(user, nil), want: Allowed},
		{name: "NOTRES: Allow with NotResource does not allow the listed ones", identity: []string{pol(`{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::amzn-s3-demo-bucket/*"}`)}, req: getObject(user, nil), want: ImplicitDeny},
		{name: "NOTRES: Deny with NotResource denies every other resource", identity: []string{pol(allowStmt("s3:*", "*"), `{"Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::allowed/*"}`)}, req: getObject(user, nil), want: ExplicitDeny},
	})
}

func TestConditionOperators(t *testing.T) {
	c := func(cond string) []string { return []string{pol(withCond(allowStmt("s3:GetObject", "*"), cond))} }
	dc := func(cond string) []string {
		return []string{pol(allowStmt("s3:GetObject", "*"), withCond(denyStmt("s3:GetObject", "*"), cond))}
	}
	r := func(kv ...any) Request { return withCtx(getObject(user, nil), kv...) }
	runEvalCases(t, []evalCase{
		{name: "COND: StringEquals matches exactly", identity: c(`{"StringEquals":{"aws:username":"gloo"}}`), req: r("aws:username", "gloo"), want: Allowed},
		{name: "COND: StringEquals is case-sensitive", identity: c(`{"StringEquals":{"aws:username":"Gloo"}}`), req: r("aws:username", "gloo"), want: ImplicitDeny},
		{name: "COND: StringEquals treats * literally", identity: c(`{"StringEquals":{"aws:username":"g*"}}`), req: r("aws:username", "gloo"), want: ImplicitDeny},
		{name: "COND: StringNotEquals", identity: c(`{"StringNotEquals":{"aws:username":"other"}}`), req: r("aws:username", "gloo"), want: Allowed},
		{name: "COND: StringEqualsIgnoreCase", identity: c(`{"StringEqualsIgnoreCase":{"aws:username":"GLOO"}}`), req: r("aws:username", "gloo"), want: Allowed},
		{name: "COND: StringNotEqualsIgnoreCase", identity: c(`{"StringNotEqualsIgnoreCase":{"aws:username":"GLOO"}}`), req: r("aws:username", "gloo"), want: ImplicitDeny},
		{name: "COND: StringLike with * and ?", identity: c(`{"StringLike":{"aws:username":"g?o*"}}`), req: r("aws:username", "gloo"), want: Allowed},
		{name: "COND: StringNotLike", identity: c(`{"StringNotLike":{"aws:username":"g*"}}`), req: r("aws:username", "gloo"), want: ImplicitDeny},
		{name: "COND: NumericLessThan", identity: c(`{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}`), req: r("aws:MultiFactorAuthAge", "120"), want: Allowed},
		{name: "COND: NumericGreaterThanEquals (number value)", identity: c(`{"NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":3600}}`), req: r("aws:MultiFactorAuthAge", "120"), want: ImplicitDeny},
		{name: "COND: NumericEquals compares numbers, not text", identity: c(`{"NumericEquals":{"aws:MultiFactorAuthAge":"120.0"}}`), req: r("aws:MultiFactorAuthAge", "120"), want: Allowed},
		{name: "COND: NumericNotEquals", identity: c(`{"NumericNotEquals":{"aws:MultiFactorAuthAge":"120"}}`), req: r("aws:MultiFactorAuthAge", "121"), want: Allowed},
		{name: "COND: NumericLessThanEquals / GreaterThan", identity: c(`{"NumericLessThanEquals":{"aws:MultiFactorAuthAge":"120"},"NumericGreaterThan":{"aws:MultiFactorAuthAge":"100"}}`), req: r("aws:MultiFactorAuthAge", "120"), want: Allowed},
		{name: "COND: DateLessThan (ISO 8601)", identity: c(`{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}`), req: r("aws:CurrentTime", "2026-11-30T12:00:00Z"), want: Allowed},
		{name: "COND: DateGreaterThan (epoch seconds)", identity: c(`{"DateGreaterThan":{"aws:EpochTime":"1700000000"}}`), req: r("aws:EpochTime", "1600000000"), want: ImplicitDeny},
		{name: "COND: DateEquals across time zone notation", identity: c(`{"DateEquals":{"aws:CurrentTime":"2026-01-01T01:00:00+01:00"}}`), req: r("aws:CurrentTime", "2026-01-01T00:00:00Z"), want: Allowed},
		{name: "COND: DateNotEquals / LessThanEquals / GreaterThanEquals", identity: c(`{"DateNotEquals":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},"DateLessThanEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"DateGreaterThanEquals":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}`), req: r("aws:CurrentTime", "2026-01-01T00:00:00Z"), want: Allowed},
		{name: "COND: Bool (case-insensitive value)", identity: c(`{"Bool":{"aws:SecureTransport":true}}`), req: r("aws:SecureTransport", "TRUE"), want: Allowed},
		{name: "COND: Bool false", identity: c(`{"Bool":{"aws:SecureTransport":"false"}}`), req: r("aws:SecureTransport", true), want: ImplicitDeny},
		{name: "COND: IpAddress with a CIDR", identity: c(`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), req: r("aws:SourceIp", "203.0.113.7"), want: Allowed},
		{name: "COND: IpAddress with a single address", identity: c(`{"IpAddress":{"aws:SourceIp":"203.0.113.7"}}`), req: r("aws:SourceIp", "203.0.113.8"), want: ImplicitDeny},
		{name: "COND: IpAddress IPv6", identity: c(`{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`), req: r("aws:SourceIp", "2001:db8:1::1"), want: Allowed},
		{name: "COND: NotIpAddress", identity: c(`{"NotIpAddress":{"aws:SourceIp":["203.0.113.0/24","198.51.100.0/24"]}}`), req: r("aws:SourceIp", "192.0.2.1"), want: Allowed},
		{name: "COND: ArnLike segment wildcards", identity: c(`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/g*"}}`), req: r("aws:PrincipalArn", user), want: Allowed},
		{name: "COND: ArnEquals behaves as ArnLike", identity: c(`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/*"}}`), req: r("aws:PrincipalArn", user), want: Allowed},
		{name: "COND: ArnNotLike", identity: c(`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}`), req: r("aws:PrincipalArn", user), want: Allowed},
		{name: "COND: ArnNotEquals", identity: c(`{"ArnNotEquals":{"aws:PrincipalArn":"` + user + `"}}`), req: r("aws:PrincipalArn", user), want: ImplicitDeny},
		{name: "COND: BinaryEquals compares the base64 text", identity: c(`{"BinaryEquals":{"aws:username":"Z2xvbw=="}}`), req: r("aws:username", "Z2xvbw=="), want: Allowed},
		{name: "COND: Null true means the key is absent", identity: c(`{"Null":{"aws:username":"true"}}`), req: r(), want: Allowed},
		{name: "COND: Null false means the key is present", identity: c(`{"Null":{"aws:username":false}}`), req: r(), want: ImplicitDeny},
		{name: "COND: a missing key makes a positive operator false", identity: c(`{"StringEquals":{"aws:username":"gloo"}}`), req: r(), want: ImplicitDeny},
		{name: "COND: a missing key makes a negated operator true", identity: c(`{"StringNotEquals":{"aws:username":"gloo"}}`), req: r(), want: Allowed},
		{name: "COND: NotIpAddress on a missing key is true", identity: c(`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`), req: r(), want: Allowed},
		{name: "COND: ...IfExists is true on a missing key", identity: c(`{"StringEqualsIfExists":{"aws:username":"other"}}`), req: r(), want: Allowed},
		{name: "COND: ...IfExists compares a present key", identity: c(`{"StringEqualsIfExists":{"aws:username":"other"}}`), req: r("aws:username", "gloo"), want: ImplicitDeny},
		{name: "COND: a Deny with a negated operator on a missing key applies", identity: dc(`{"StringNotEquals":{"aws:username":"gloo"}}`), req: r(), want: ExplicitDeny},
		{name: "MULTI: several values of one key are ORed", identity: c(`{"StringEquals":{"aws:username":["a","gloo"]}}`), req: r("aws:username", "gloo"), want: Allowed},
		{name: "MULTI: several keys are ANDed", identity: c(`{"StringEquals":{"aws:username":"gloo","aws:PrincipalAccount":"444455556666"}}`), req: r("aws:username", "gloo", "aws:PrincipalAccount", acct), want: ImplicitDeny},
		{name: "MULTI: several operators are ANDed", identity: c(`{"StringEquals":{"aws:username":"gloo"},"Bool":{"aws:SecureTransport":"true"}}`), req: r("aws:username", "gloo", "aws:SecureTransport", "false"), want: ImplicitDeny},
		{name: "MULTI: a negated operator with several values is NOR", identity: c(`{"StringNotEquals":{"aws:username":["a","gloo"]}}`), req: r("aws:username", "gloo"), want: ImplicitDeny},
		{name: "SINGLE: ForAnyValue — one request value matches", identity: c(`{"ForAnyValue:StringEquals":{"aws:PrincipalOrgPaths":["o-1/r-1/ou-1/"]}}`), req: r("aws:PrincipalOrgPaths", []any{"o-1/r-1/ou-2/", "o-1/r-1/ou-1/"}), want: Allowed},
		{name: "SINGLE: ForAnyValue — a missing key does not match", identity: c(`{"ForAnyValue:StringEquals":{"aws:PrincipalOrgPaths":"x"}}`), req: r(), want: ImplicitDeny},
		{name: "SINGLE: ForAllValues — every request value must match", identity: c(`{"ForAllValues:StringLike":{"aws:PrincipalOrgPaths":"o-1/*"}}`), req: r("aws:PrincipalOrgPaths", []any{"o-1/a/", "o-2/b/"}), want: ImplicitDeny},
		{name: "SINGLE: ForAllValues — true for a missing key", identity: c(`{"ForAllValues:StringLike":{"aws:PrincipalOrgPaths":"o-1/*"}}`), req: r(), want: Allowed},
		{name: "SINGLE: ForAllValues — true for an empty list", identity: c(`{"ForAllValues:StringLike":{"aws:PrincipalOrgPaths":"o-1/*"}}`), req: r("aws:PrincipalOrgPaths", []any{}), want: Allowed},
		{name: "SINGLE: a single-valued operator does not match a multivalued key", identity: c(`{"StringLike":{"aws:PrincipalOrgPaths":"*"}}`), req: r("aws:PrincipalOrgPaths", []any{"o-1/a/"}), want: ImplicitDeny},
		{name: "SINGLE: ForAllValues with a negated operator: no value may match", identity: c(`{"ForAllValues:StringNotEquals":{"aws:PrincipalOrgPaths":"bad"}}`), req: r("aws:PrincipalOrgPaths", []any{"ok", "bad"}), want: ImplicitDeny},
		{name: "EC2/COND: a context key the action does not support is ignored (treated as missing)",
			identity: []string{pol(withCond(allowStmt("ec2:DescribeInstances", "*"), `{"StringEquals":{"ec2:ResourceTag/Owner":"Gloo"}}`))},
			req:      withCtx(describe("us-east-1"), "ec2:ResourceTag/Owner", "Gloo"), want: ImplicitDeny},
		{name: "COND: condition key names are case-insensitive", identity: c(`{"StringEquals":{"AWS:USERNAME":"gloo"}}`), req: r("aws:username", "gloo"), want: Allowed},
		{name: "COND: operator names are matched case-insensitively", identity: c(`{"stringequals":{"aws:username":"gloo"}}`), req: r("aws:username", "gloo"), want: Allowed},
	})
}

func TestPolicyVariables(t *testing.T) {
	obj := func(resource string) []string { return []string{pol(allowStmt("s3:GetObject", resource))} }
	old := func(resource string) []string {
		return []string{`{"Version":"2008-10-17","Statement":[` + allowStmt("s3:GetObject", resource) + `]}`}
	}
	r := func(res string, kv ...any) Request {
		req := withCtx(getObject(user, nil), kv...)
		req.Resource = res
		return req
	}
	runEvalCases(t, []evalCase{
		{name: "VARS: ${aws:username} in Resource", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"), req: r(bucket, "aws:username", "gloo"), want: Allowed},
		{name: "VARS: the substituted value is matched literally", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"), req: r(bucket, "aws:username", "g*"), want: ImplicitDeny},
		{name: "VARS: a missing variable without default makes the element not match", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"), req: r(bucket), want: ImplicitDeny},
		{name: "VARS: default value when the key is missing", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username, 'gloo'}/*"), req: r(bucket), want: Allowed},
		{name: "VARS: ${*} is a literal asterisk", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${*}"), req: r("arn:aws:s3:::amzn-s3-demo-bucket/*"), want: Allowed},
		{name: "VARS: ${*} does not act as a wildcard", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${*}"), req: r(bucket), want: ImplicitDeny},
		{name: "VARS: ${?} is a literal question mark", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/a${?}"), req: r("arn:aws:s3:::amzn-s3-demo-bucket/a?"), want: Allowed},
		{name: "VARS: ${$} is a literal dollar sign", identity: obj("arn:aws:s3:::amzn-s3-demo-bucket/${$}x"), req: r("arn:aws:s3:::amzn-s3-demo-bucket/$x"), want: Allowed},
		{name: "VARS: variables in condition values", identity: []string{pol(withCond(allowStmt("s3:GetObject", "*"), `{"StringEquals":{"aws:PrincipalTag/team":"${aws:username}"}}`))},
			req: r(bucket, "aws:username", "gloo", "aws:PrincipalTag/team", "gloo"), want: Allowed},
		{name: "VARS/VERSION: under 2008-10-17 ${...} is literal text (no match for the user's folder)", identity: old("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"), req: r(bucket, "aws:username", "gloo"), want: ImplicitDeny},
		{name: "VARS/VERSION: under 2008-10-17 ${...} matches itself literally", identity: old("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*"), req: r("arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/x", "aws:username", "gloo"), want: Allowed},
		{name: "VERSION: a policy without Version is 2008-10-17", identity: []string{`{"Statement":[` + allowStmt("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/${aws:username}/*") + `]}`}, req: r(bucket, "aws:username", "gloo"), want: ImplicitDeny},
	})
}

func TestIgnoredContextKeysReported(t *testing.T) {
	e := realEngine(t)
	ps := policySetFromText(t, allowDescribe)
	d, err := e.Evaluate(context.Background(), ps, withCtx(describe("us-east-1"), "ec2:ResourceTag/Owner", "Gloo"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.IgnoredContextKeys) != 1 || d.IgnoredContextKeys[0] != "ec2:ResourceTag/Owner" {
		t.Fatalf("ignored keys: %v", d.IgnoredContextKeys)
	}
}
