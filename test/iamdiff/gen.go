// Package iamdiff generates varied IAM simulation cases (the `ec2guard simulate --batch` case format, docs/cli.md) for the
// differential test of ec2guard's engine against the independent oracle (@cloud-copilot/iam-simulate)
// and for the batch benchmark. Generation is deterministic: the same seed gives the same cases.
package iamdiff

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/ec2guard/ec2guard/test/harness/oracle"
)

const (
	account      = "111122223333"
	otherAccount = "444455556666"
	userARN      = "arn:aws:iam::111122223333:user/gloo"
	roleARN      = "arn:aws:iam::111122223333:role/app"
	sessionARN   = "arn:aws:sts::111122223333:assumed-role/app/s1"
	externalUser = "arn:aws:iam::444455556666:user/ext"
)

// Generate returns n cases from the seed.
func Generate(seed uint64, n int) []oracle.Case {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	out := make([]oracle.Case, 0, n)
	for i := range n {
		c := g.scenario()
		c.ID = fmt.Sprintf("c%05d", i)
		out = append(out, c)
	}
	return out
}

type gen struct{ r *rand.Rand }

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }
func (g *gen) chance(p float64) bool    { return g.r.Float64() < p }
func (g *gen) between(lo, hi int) int   { return lo + g.r.IntN(hi-lo+1) }

// request is the request part of a scenario and what the statement generators need to aim at it.
type request struct {
	principal string
	action    string // canonical
	service   string
	resource  string
	ctx       map[string]any
	// actions near the request's action (same service) to build non-matching statements.
	siblings []string
	// resources near the request's resource.
	otherResources []string
	// keys the action supports beyond the global ones, with example values.
	actionKeys map[string][]string
}

var regions = []string{"us-east-1", "eu-west-1", "ap-south-1"}

func (g *gen) scenario() oracle.Case {
	var req request
	switch w := g.r.IntN(100); {
	case w < 35:
		req = g.describeRequest()
	case w < 50:
		req = g.startInstancesRequest()
	case w < 62:
		req = g.createTagsRequest()
	case w < 85:
		req = g.getObjectRequest()
	default:
		req = g.assumeRoleRequest()
	}
	g.addGlobalContext(&req)
	c := oracle.Case{Request: oracle.Request{
		Principal: req.principal, Action: g.caseVariant(req.action), Resource: req.resource,
		ResourceAccount: account, Context: req.ctx,
	}}
	for range g.between(1, 3) {
		c.IdentityPolicies = append(c.IdentityPolicies, g.policy(&req, "identity"))
	}
	if g.chance(0.1) {
		c.IdentityPolicies = nil
	}
	if g.chance(0.2) {
		c.PermissionsBoundary = g.policy(&req, "boundary")
	}
	if g.chance(0.25) {
		for range g.between(1, 3) {
			var level []json.RawMessage
			for range g.between(1, 2) {
				level = append(level, g.policy(&req, "scp"))
			}
			c.SCPs = append(c.SCPs, level)
		}
	}
	if g.chance(0.2) {
		for l := range g.between(1, 2) {
			var level []json.RawMessage
			// Organizations lists AWS's RCPFullAWSAccess at every level; the root level lists it
			// as AWS does, the others leave it implicit (the oracle adds it to every level).
			if l == 0 {
				level = append(level, rcpFullAWSAccess)
			}
			for range g.between(0, 2) {
				level = append(level, g.rcp(&req))
			}
			c.RCPs = append(c.RCPs, level)
		}
	}
	if req.service == "s3" || req.service == "sts" || g.chance(0.1) {
		if g.chance(0.6) {
			c.ResourcePolicy = g.resourcePolicy(&req)
		}
	}
	if req.principal == sessionARN && g.chance(0.3) {
		c.SessionPolicy = g.policy(&req, "session")
	}
	return c
}

func (g *gen) principal(external bool) string {
	switch w := g.r.IntN(100); {
	case external && w < 20:
		return externalUser
	case w < 60:
		return userARN
	default:
		return sessionARN
	}
}

func (g *gen) describeRequest() request {
	return request{
		principal: g.principal(false), action: "ec2:DescribeInstances", service: "ec2", resource: "*",
		ctx:            map[string]any{},
		siblings:       []string{"ec2:DescribeRegions", "ec2:DescribeImages", "ec2:StartInstances", "ec2:TerminateInstances"},
		otherResources: []string{"arn:aws:ec2:us-east-1:111122223333:instance/*", "arn:aws:ec2:*:*:*", "arn:aws:ec2:*:111122223333:instance/i-0abc"},
		actionKeys:     map[string][]string{"ec2:Region": regions},
	}
}

func (g *gen) instanceARN(region string) string {
	return fmt.Sprintf("arn:aws:ec2:%s:111122223333:instance/i-0%s", region, g.pick("abc", "def", "123"))
}

func (g *gen) startInstancesRequest() request {
	region := g.pick(regions...)
	res := g.instanceARN(region)
	return request{
		principal: g.principal(false), action: "ec2:StartInstances", service: "ec2", resource: res,
		ctx:            map[string]any{"ec2:ResourceTag/Owner": g.pick("Gloo", "gloo", "web"), "ec2:Region": region},
		siblings:       []string{"ec2:StopInstances", "ec2:DescribeInstances", "ec2:RebootInstances"},
		otherResources: []string{g.instanceARN(g.pick(regions...)), "arn:aws:ec2:us-east-1:444455556666:instance/i-0abc", "arn:aws:ec2:us-east-1:111122223333:volume/vol-1"},
		actionKeys:     map[string][]string{"ec2:ResourceTag/Owner": {"Gloo", "web"}, "ec2:Region": regions, "ec2:InstanceType": {"t3.micro", "m5.large"}},
	}
}

func (g *gen) createTagsRequest() request {
	region := g.pick(regions...)
	tagKeys := []any{}
	for _, k := range []string{"Owner", "env", "team"} {
		if g.chance(0.5) {
			tagKeys = append(tagKeys, k)
		}
	}
	ctx := map[string]any{"ec2:Region": region}
	if g.chance(0.85) {
		ctx["aws:TagKeys"] = tagKeys
	}
	if g.chance(0.6) {
		ctx["aws:RequestTag/Owner"] = g.pick("Gloo", "web")
	}
	return request{
		principal: g.principal(false), action: "ec2:CreateTags", service: "ec2", resource: g.instanceARN(region),
		ctx:            ctx,
		siblings:       []string{"ec2:DeleteTags", "ec2:DescribeTags"},
		otherResources: []string{"arn:aws:ec2:*:*:volume/*"},
		actionKeys:     map[string][]string{"aws:RequestTag/Owner": {"Gloo", "web"}, "ec2:Region": regions},
	}
}

func (g *gen) getObjectRequest() request {
	bucket := g.pick("bucket-a", "bucket-b")
	owner := g.pick("gloo", "web", "Gloo")
	return request{
		principal: g.principal(true), action: "s3:GetObject", service: "s3",
		resource:       fmt.Sprintf("arn:aws:s3:::%s/%s/file.txt", bucket, owner),
		ctx:            map[string]any{},
		siblings:       []string{"s3:PutObject", "s3:ListBucket", "s3:GetObjectAcl"},
		otherResources: []string{"arn:aws:s3:::bucket-a", "arn:aws:s3:::bucket-c/*", "arn:aws:s3:::bucket-a/web/*"},
		actionKeys:     map[string][]string{},
	}
}

func (g *gen) assumeRoleRequest() request {
	return request{
		principal: g.principal(true), action: "sts:AssumeRole", service: "sts", resource: roleARN,
		ctx:            map[string]any{},
		siblings:       []string{"sts:TagSession", "sts:AssumeRoleWithWebIdentity"},
		otherResources: []string{"arn:aws:iam::111122223333:role/other", "arn:aws:iam::111122223333:role/*"},
		actionKeys:     map[string][]string{},
	}
}

// addGlobalContext fills the request context with global keys (each sometimes absent).
func (g *gen) addGlobalContext(req *request) {
	c := req.ctx
	set := func(p float64, k string, v any) {
		if g.chance(p) {
			c[k] = v
		}
	}
	set(0.8, "aws:RequestedRegion", g.pick(regions...))
	if req.principal == userARN || req.principal == externalUser {
		set(0.7, "aws:username", g.pick("gloo", "web", "g*"))
	}
	set(0.5, "aws:PrincipalTag/team", g.pick("gloo", "web", "Gloo"))
	set(0.5, "aws:PrincipalAccount", account)
	set(0.4, "aws:MultiFactorAuthAge", fmt.Sprint(g.between(0, 7200)))
	set(0.4, "aws:CurrentTime", fmt.Sprintf("202%d-%02d-%02dT%02d:00:00Z", g.between(4, 7), g.between(1, 12), g.between(1, 28), g.between(0, 23)))
	set(0.3, "aws:EpochTime", fmt.Sprint(1700000000+g.between(0, 100000000)))
	set(0.5, "aws:SecureTransport", g.pick("true", "false"))
	set(0.3, "aws:MultiFactorAuthPresent", g.pick("true", "false"))
	set(0.5, "aws:SourceIp", g.pick("10.0.1.7", "10.1.0.9", "203.0.113.42", "2001:db8::1", "192.0.2.200"))
	pa := req.principal
	if pa == sessionARN {
		pa = roleARN
	}
	set(0.5, "aws:PrincipalArn", pa)
	set(0.3, "aws:SourceArn", g.pick("arn:aws:sns:us-east-1:111122223333:topic", "arn:aws:s3:::bucket-a"))
	if g.chance(0.4) {
		var paths []any
		for range g.between(0, 3) {
			paths = append(paths, g.pick("o-1/r-1/ou-a/", "o-1/r-1/ou-b/", "o-2/r-9/"))
		}
		if paths == nil {
			paths = []any{}
		}
		c["aws:PrincipalOrgPaths"] = paths
	}
	if g.chance(0.25) {
		c["aws:CalledVia"] = []any{g.pick("cloudformation.amazonaws.com", "athena.amazonaws.com")}
	}
	if req.action == "ec2:DescribeInstances" && g.chance(0.2) {
		c["ec2:ResourceTag/Owner"] = "Gloo" // not available for DescribeInstances: ignored
	}
}

// caseVariant changes the case of some letters of an action name (actions are case-insensitive).
func (g *gen) caseVariant(action string) string {
	if !g.chance(0.15) {
		return action
	}
	b := []byte(action)
	for i := range b {
		if g.chance(0.3) {
			if b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 32
			} else if b[i] >= 'A' && b[i] <= 'Z' {
				b[i] += 32
			}
		}
	}
	return string(b)
}

func (g *gen) actionElement(req *request) (string, any) {
	svc, name, _ := strings.Cut(req.action, ":")
	matching := []string{
		req.action, g.caseVariant(req.action), svc + ":*", "*",
		svc + ":" + name[:len(name)/2] + "*",
		svc + ":" + name[:len(name)-1] + "?",
		svc + ":*" + name[len(name)-3:],
	}
	nonMatching := append([]string{svc + ":" + name + "?", "iam:*", "s3:Get*"}, req.siblings...)
	one := func() string {
		if g.chance(0.65) {
			return g.pick(matching...)
		}
		return g.pick(nonMatching...)
	}
	key := "Action"
	if g.chance(0.15) {
		key = "NotAction"
	}
	if g.chance(0.35) {
		var list []string
		for range g.between(2, 3) {
			list = append(list, one())
		}
		return key, list
	}
	return key, one()
}

func (g *gen) resourceElement(req *request, vars bool) (string, any) {
	var matching []string
	if req.resource == "*" {
		matching = []string{"*"}
	} else {
		parts := strings.SplitN(req.resource, ":", 6)
		rest := parts[5]
		matching = []string{"*", req.resource,
			strings.Join(append(parts[:3:3], "*", "*", rest), ":"),
			req.resource[:len(req.resource)-3] + "*",
			req.resource[:len(req.resource)-1] + "?",
		}
		if req.service == "s3" {
			matching = append(matching, "arn:aws:s3:::bucket-*/*")
			if vars {
				matching = append(matching, "arn:aws:s3:::bucket-a/${aws:username}/*", "arn:aws:s3:::bucket-?/${aws:PrincipalTag/team}/file.txt",
					"arn:aws:s3:::bucket-a/${aws:username, 'gloo'}/*", "arn:aws:s3:::bucket-a/${*}", "arn:aws:s3:::bucket-a/gl${?}o/*")
			}
		}
		if req.service == "ec2" && vars {
			matching = append(matching, "arn:aws:ec2:${aws:RequestedRegion}:111122223333:instance/*")
		}
		// case differences in the resource part do not match
		upper := strings.Join(parts[:5], ":") + ":" + strings.ToUpper(rest[:len(rest)-2]) + rest[len(rest)-2:]
		matching = append(matching, upper)
	}
	one := func() string {
		if g.chance(0.7) {
			return g.pick(matching...)
		}
		return g.pick(req.otherResources...)
	}
	key := "Resource"
	if g.chance(0.12) {
		key = "NotResource"
	}
	if g.chance(0.3) {
		var list []string
		for range g.between(2, 3) {
			list = append(list, one())
		}
		return key, list
	}
	return key, one()
}

// condition returns (operator, key, values) aimed at the request context.
func (g *gen) condition(req *request, vars bool) (string, string, any) {
	ctxString := func(k string, fallback ...string) (string, bool) {
		if v, ok := req.ctx[k].(string); ok {
			return v, true
		}
		return g.pick(fallback...), false
	}
	values := func(match string, others ...string) any {
		vals := []string{}
		if g.chance(0.7) {
			vals = append(vals, match)
		}
		for range g.between(0, 2) {
			vals = append(vals, g.pick(others...))
		}
		if len(vals) == 0 {
			vals = append(vals, g.pick(others...))
		}
		g.r.Shuffle(len(vals), func(i, j int) { vals[i], vals[j] = vals[j], vals[i] })
		if len(vals) == 1 && g.chance(0.5) {
			return vals[0]
		}
		return vals
	}
	ifExists := func(op string) string {
		if g.chance(0.2) {
			return op + "IfExists"
		}
		return op
	}
	switch w := g.r.IntN(100); {
	case w < 22: // string keys
		key := g.pick("aws:RequestedRegion", "aws:username", "aws:PrincipalTag/team", "aws:PrincipalAccount")
		v, _ := ctxString(key, "us-east-1", "gloo")
		op := g.pick("StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike")
		others := []string{"eu-west-1", "web", "GLOO", "us-*", "g*", "*", "gl?o", account}
		if vars && g.chance(0.3) {
			return ifExists(op), key, values("${aws:username}", "${aws:PrincipalTag/team}", "${aws:username, 'gloo'}", "${aws:RequestedRegion}", "g${*}")
		}
		return ifExists(op), key, values(v, others...)
	case w < 30: // action-specific keys
		if len(req.actionKeys) == 0 {
			return "StringEquals", "aws:RequestedRegion", values(g.pick(regions...), regions...)
		}
		keys := make([]string, 0, len(req.actionKeys))
		for k := range req.actionKeys {
			keys = append(keys, k)
		}
		sortStrings(keys)
		key := g.pick(keys...)
		v, _ := ctxString(key, req.actionKeys[key]...)
		return ifExists(g.pick("StringEquals", "StringNotEquals", "StringLike")), key, values(v, req.actionKeys[key]...)
	case w < 38:
		v, _ := ctxString("aws:MultiFactorAuthAge", "3600")
		op := g.pick("NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals")
		return ifExists(op), "aws:MultiFactorAuthAge", values(v, "0", "600", "3600", "7200", "1800.5")
	case w < 46:
		op := g.pick("DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals")
		if g.chance(0.5) {
			v, _ := ctxString("aws:CurrentTime", "2025-06-01T00:00:00Z")
			return ifExists(op), "aws:CurrentTime", values(v, "2025-01-01T00:00:00Z", "2026-06-15T12:00:00Z", "2027-12-31T23:59:59Z")
		}
		v, _ := ctxString("aws:EpochTime", "1750000000")
		return ifExists(op), "aws:EpochTime", values(v, "1700000000", "1750000000", "1800000000")
	case w < 53:
		key := g.pick("aws:SecureTransport", "aws:MultiFactorAuthPresent")
		v, _ := ctxString(key, "true")
		return ifExists("Bool"), key, values(v, "true", "false")
	case w < 61:
		op := g.pick("IpAddress", "NotIpAddress")
		v, _ := ctxString("aws:SourceIp", "10.0.1.7")
		return ifExists(op), "aws:SourceIp", values(v, "10.0.0.0/16", "10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32", "192.0.2.0/25", "198.51.100.1")
	case w < 69:
		op := g.pick("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike")
		key := g.pick("aws:PrincipalArn", "aws:SourceArn")
		v, _ := ctxString(key, userARN)
		others := []string{"arn:aws:iam::111122223333:user/*", "arn:aws:iam::*:role/app", "arn:aws:sns:*:111122223333:*", "arn:aws:s3:::bucket-?", "arn:aws:iam::444455556666:*"}
		if vars && g.chance(0.3) {
			return ifExists(op), key, values("arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}", others...)
		}
		return ifExists(op), key, values(v, others...)
	case w < 73:
		return "BinaryEquals", "aws:username", values("Z2xvbw==", "gloo")
	case w < 80:
		key := g.pick("aws:username", "aws:SourceIp", "aws:PrincipalOrgPaths", "aws:TagKeys", "ec2:ResourceTag/Owner", "aws:RequestTag/Owner")
		return "Null", key, g.pick("true", "false")
	default: // set operators
		key := g.pick("aws:PrincipalOrgPaths", "aws:CalledVia", "aws:TagKeys", "aws:TagKeys", "aws:username", "aws:PrincipalTag/team")
		set := g.pick("ForAnyValue:", "ForAllValues:", "ForAnyValue:", "ForAllValues:", "")
		op := g.pick("StringEquals", "StringLike", "StringNotEquals", "StringNotLike", "StringEqualsIgnoreCase")
		others := []string{"o-1/r-1/ou-a/", "o-1/*", "Owner", "env", "team", "cloudformation.amazonaws.com", "gloo", "*"}
		var match string
		switch v := req.ctx[key].(type) {
		case string:
			match = v
		case []any:
			if len(v) > 0 {
				match = v[0].(string)
			}
		}
		if match == "" {
			match = g.pick(others...)
		}
		return set + ifExists(op), key, values(match, others...)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// statement builds one statement for a policy of the given kind.
func (g *gen) statement(req *request, kind string, vars bool) map[string]any {
	s := map[string]any{}
	effect := "Allow"
	switch kind {
	case "identity", "resource":
		if g.chance(0.25) {
			effect = "Deny"
		}
	case "boundary", "session", "scp":
		if g.chance(0.2) {
			effect = "Deny"
		}
	}
	s["Effect"] = effect
	if g.chance(0.3) {
		s["Sid"] = fmt.Sprintf("S%d", g.r.IntN(100))
	}
	k, v := g.actionElement(req)
	s[k] = v
	if kind == "scp" && g.chance(0.5) && effect == "Allow" {
		delete(s, k)
		s["Action"] = "*"
	}
	if kind != "resource" || g.chance(0.8) {
		k, v = g.resourceElement(req, vars)
		s[k] = v
	}
	if g.chance(0.55) {
		cond := map[string]map[string]any{}
		for range g.between(1, 3) {
			op, key, vals := g.condition(req, vars)
			if cond[op] == nil {
				cond[op] = map[string]any{}
			}
			cond[op][key] = vals
		}
		s["Condition"] = cond
	}
	return s
}

func (g *gen) policy(req *request, kind string) json.RawMessage {
	vars := g.chance(0.35)
	version := "2012-10-17"
	if g.chance(0.12) {
		version = g.pick("2008-10-17", "")
	}
	var stmts []any
	for range g.between(1, 4) {
		stmts = append(stmts, g.statement(req, kind, vars))
	}
	if kind == "scp" && g.chance(0.6) {
		stmts = append(stmts, map[string]any{"Effect": "Allow", "Action": "*", "Resource": "*"})
	}
	doc := map[string]any{"Statement": stmts}
	if version != "" {
		doc["Version"] = version
	}
	if g.chance(0.1) && len(stmts) == 1 {
		doc["Statement"] = stmts[0]
	}
	return mustJSON(doc)
}

// rcpFullAWSAccess is AWS's managed RCP as `aws organizations describe-policy --policy-id
// p-RCPFullAWSAccess` returns its content: the only Allow an RCP may hold.
var rcpFullAWSAccess = json.RawMessage(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`)

// rcp builds a valid RCP: Deny statements with Principal "*" and named actions.
func (g *gen) rcp(req *request) json.RawMessage {
	var stmts []any
	for range g.between(1, 2) {
		svc, _, _ := strings.Cut(req.action, ":")
		s := map[string]any{
			"Effect":    "Deny",
			"Principal": "*",
			"Action":    g.pick(req.action, svc+":*", "s3:GetObject", "sts:AssumeRole", "kms:Decrypt"),
			"Resource":  "*",
		}
		if g.chance(0.6) {
			op, key, vals := g.condition(req, false)
			s["Condition"] = map[string]any{op: map[string]any{key: vals}}
		}
		stmts = append(stmts, s)
	}
	return mustJSON(map[string]any{"Version": "2012-10-17", "Statement": stmts})
}

func (g *gen) principalElement() any {
	aws := func() string {
		return g.pick(userARN, roleARN, sessionARN, account, "arn:aws:iam::111122223333:root", otherAccount,
			externalUser, "arn:aws:iam::111122223333:user/other", "*")
	}
	switch w := g.r.IntN(100); {
	case w < 10:
		return "*"
	case w < 15:
		return map[string]any{"Service": "ec2.amazonaws.com"}
	case w < 70:
		return map[string]any{"AWS": aws()}
	default:
		return map[string]any{"AWS": []string{aws(), aws()}}
	}
}

func (g *gen) resourcePolicy(req *request) json.RawMessage {
	vars := g.chance(0.3)
	var stmts []any
	for range g.between(1, 3) {
		s := g.statement(req, "resource", vars)
		if g.chance(0.15) {
			np := g.principalElement()
			if np == "*" {
				np = map[string]any{"AWS": userARN}
			}
			s["NotPrincipal"] = np
		} else {
			s["Principal"] = g.principalElement()
		}
		stmts = append(stmts, s)
	}
	doc := map[string]any{"Version": "2012-10-17", "Statement": stmts}
	if vars && g.chance(0.2) {
		doc["Version"] = "2008-10-17"
	}
	return mustJSON(doc)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // generator bug: only plain maps and strings are marshalled
	}
	return b
}
