# Unit tests of the evaluation rules, run from Go by rego_test.go (OPA's tester). Inputs are written
# in the compiled form policyset.go produces; see iam.rego for the schema.
package ec2guard.iam_test

import data.ec2guard.iam

user := {
	"arn": "arn:aws:iam::111122223333:user/gloo", "account": "111122223333", "kind": "user",
	"part": "aws", "srole": "", "fuser": "",
}

describe := {
	"action": "ec2:describeinstances", "service": "ec2", "resource": "*",
	"resource_account": "111122223333", "wildcard_only": true, "rcp": false,
	"ctx": {"aws:requestedregion": "us-east-1", "aws:username": "gloo"},
	"principal": user, "uk": {"ec2:resourcetag/owner"}, "has_uk": true, "star": true, "f": all_flags,
	"ctxl": {"aws:requestedregion": ["us-east-1"], "aws:username": ["gloo"]},
}

# Every element flag on (policyset.go sets only those that occur; the rules must not depend on it).
all_flags := {f: true | some f in ["na", "nr", "rv", "vars", "vv", "str", "strx", "num", "date", "bool", "bin", "ip", "null", "ie", "any", "all", "noresource", "strany", "strp", "strglob", "neg", "c1", "region"]}

star := {"s": "*", "any": true}

describe_action := {"s": "ec2:DescribeInstances", "x": "ec2:describeinstances"}

# group mirrors groupMatchers in policyset.go.
group(ms) := g if {
	base := {
		"x": {m.x: true | some m in ms; m.x},
		"p": [m.p | some m in ms; m.p],
		"g": [m.g | some m in ms; m.g],
	}
	g := object.union(object.union(base, {"any": true | some m in ms; m.any}), {"m": m.m | some m in ms; m.g})
}

stmt(kind, effect, conds) := with_conds({
	"k": kind, "l": 0, "i": 0, "e": effect, "v": "2012-10-17",
	"a": [describe_action], "ag": group([describe_action]), "r": [star], "rg": group([star]),
}, conds)

family(op) := "null" if op == "Null"

family(op) := "bool" if op == "Bool"

family(op) := "bin" if op == "BinaryEquals"

family(op) := "ip" if op in {"IpAddress", "NotIpAddress"}

family(op) := "num" if startswith(op, "Numeric")

family(op) := "date" if startswith(op, "Date")

family(op) := "str" if {
	not op in {"Null", "Bool", "BinaryEquals", "IpAddress", "NotIpAddress"}
	not startswith(op, "Numeric")
	not startswith(op, "Date")
}

# with_conds mirrors policyset.go: conditions by position, family, set operator and IfExists.
with_conds(s, conds) := object.union(s, {
	"cl": cl,
	"nc": count(cl),
	"cj": [j | some j, _ in cl],
	"ck": [c.k | some c in cl],
	"cks": {c.k | some c in cl},
	"cf": {f: [c | some c in cl; family(c.op) == f] | some c0 in cl; f := family(c0.op)},
	"c1": [c | some c in cl; c.op != "Null"; c.set == ""],
	"cany": [c | some c in cl; c.op != "Null"; c.set == "ForAnyValue"],
	"call": [c | some c in cl; c.op != "Null"; c.set == "ForAllValues"],
	"cie": [c | some c in cl; c.ie],
}) if {
	cl := [object.union({"vv": []}, object.union(c, {"j": j, "g": group(c.vs)})) | some j, c in conds]
}

allow := stmt("identity", "Allow", [])

deny := stmt("identity", "Deny", [])

policy_set(stmts) := {
	"st": stmts, "ax": {}, "aws": {}, "awa": numbers.range(0, count(stmts) - 1), "scpl": [], "hv": [],
	"f": all_flags,
	"opset": {op | some s in stmts; some c in s.cl; op := c.op},
	"kidx": {k: [[i, j] | some i, s in stmts; some j, c in s.cl; c.k == k] | some s0 in stmts; some c0 in s0.cl; k := c0.k},
	"has_boundary": false, "has_session": false, "has_resource": false, "layered": true,
	"has_rcp": true, # the general effective rules; input_for adds no_resource unless has_resource
}

cond(op, key, vals) := {"op": op, "set": "", "ie": false, "k": key, "kraw": key, "vs": vals}

region_is(r) := cond("StringEquals", "aws:requestedregion", [{"s": r, "x": r}])

with_actions(s, ms) := object.union(object.remove(s, ["a", "ag"]), {"a": ms, "ag": group(ms)})

with_resources(s, ms) := object.union(object.remove(s, ["r", "rg"]), {"r": ms, "rg": group(ms)})

# with_ctx replaces a request's context (both forms, as request.go builds them).
with_ctx(req, ctx) := object.union(req, {"ctx": ctx, "ctxl": {k: as_list(v) | some k, v in ctx}})

as_list(v) := v if is_array(v)

as_list(v) := [v] if is_string(v)

# input_for is the Rego input for a request and a policy set: the request's wk lists, as policyset.go's
# actionView builds them, for the statements in ps.awa (all of them, see policy_set).
input_for(req, ps) := {"req": object.union(req, {"wk": wk}), "ps": resource_flags(ps)} if {
	wk := {k: l |
		some k in ["x", "any", "p", "g", "na"]
		l := [i | some i in ps.awa; has_kind(ps.st[i], k)]
		count(l) > 0
	}
}

resource_flags(ps) := ps if ps.has_resource == true

resource_flags(ps) := object.union(ps, {"no_resource": true}) if not ps.has_resource

has_kind(s, "na") if s.na

has_kind(s, "x") if count(s.ag.x) > 0

has_kind(s, "any") if s.ag.any

has_kind(s, "p") if count(s.ag.p) > 0

has_kind(s, "g") if count(s.ag.g) > 0

decide(req, ps) := d if {
	d := iam.decision with input as input_for(req, ps)
}

test_default_is_implicit_deny if decide(describe, policy_set([])) == "implicitDeny"

test_allow if decide(describe, policy_set([allow])) == "allowed"

test_explicit_deny_wins if decide(describe, policy_set([allow, deny])) == "explicitDeny"

test_action_prefix_wildcard if {
	s := with_actions(allow, [{"s": "ec2:Describe*", "p": "ec2:describe"}])
	decide(describe, policy_set([s])) == "allowed"
}

test_not_action_excludes if {
	s := object.remove(object.union(allow, {"na": [{"s": "ec2:Describe*", "p": "ec2:describe"}]}), ["a", "ag"])
	decide(describe, policy_set([s])) == "implicitDeny"
}

test_not_action_includes_others if {
	s := object.remove(object.union(allow, {"na": [{"s": "s3:*", "p": "s3:"}]}), ["a", "ag"])
	decide(describe, policy_set([s])) == "allowed"
}

test_wildcard_only_action_needs_star if {
	s := with_resources(allow, [{"s": "arn:aws:ec2:*:*:instance/*", "g": "arn:aws:ec2:*:*:instance/*", "m": "arn"}])
	decide(describe, policy_set([s])) == "implicitDeny"
}

test_resource_mismatch_lint if {
	s := with_resources(allow, [{"s": "arn:aws:ec2:*:*:instance/*", "g": "x", "m": "arn"}])
	r := iam.result with input as input_for(describe, policy_set([s]))
	{"code": "RESOURCE_MISMATCH", "i": 0} in r.findings
}

test_region_condition if {
	s := with_conds(allow, [region_is("us-east-1")])
	decide(describe, policy_set([s])) == "allowed"
	other := with_ctx(describe, {"aws:requestedregion": "eu-west-1"})
	decide(other, policy_set([s])) == "implicitDeny"
}

test_region_mismatch_lint if {
	s := with_conds(allow, [region_is("us-east-1")])
	other := with_ctx(describe, {"aws:requestedregion": "eu-west-1"})
	r := iam.result with input as input_for(other, policy_set([s]))
	{"code": "REGION_MISMATCH", "i": 0, "key": "aws:requestedregion"} in r.findings
}

test_missing_key_positive_operator_fails if {
	s := with_conds(allow, [cond("StringEquals", "ec2:resourcetag/owner", [{"s": "Gloo", "x": "Gloo"}])])
	decide(describe, policy_set([s])) == "implicitDeny"
}

test_missing_key_negated_operator_matches if {
	s := with_conds(allow, [cond("StringNotEquals", "ec2:resourcetag/owner", [{"s": "Gloo", "x": "Gloo"}])])
	decide(describe, policy_set([s])) == "allowed"
}

test_if_exists_on_missing_key if {
	c := object.union(cond("StringEquals", "ec2:resourcetag/owner", [{"s": "Gloo", "x": "Gloo"}]), {"ie": true})
	decide(describe, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_multiple_values_or if {
	c := cond("StringEquals", "aws:requestedregion", [{"s": "eu-west-1", "x": "eu-west-1"}, {"s": "us-east-1", "x": "us-east-1"}])
	decide(describe, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_multiple_keys_and if {
	c2 := cond("StringEquals", "aws:username", [{"s": "other", "x": "other"}])
	decide(describe, policy_set([with_conds(allow, [region_is("us-east-1"), c2])])) == "implicitDeny"
}

test_for_all_values_missing_key_true if {
	c := object.union(cond("StringEquals", "aws:tagkeys", [{"s": "a", "x": "a"}]), {"set": "ForAllValues"})
	decide(describe, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_for_any_value_missing_key_false if {
	c := object.union(cond("StringEquals", "aws:tagkeys", [{"s": "a", "x": "a"}]), {"set": "ForAnyValue"})
	decide(describe, policy_set([with_conds(allow, [c])])) == "implicitDeny"
}

test_variable_substitution if {
	c := object.union(cond("StringEquals", "aws:principaltag/team", []), {"vv": [{"s": "${aws:username}", "x": "${aws:username}", "t": [["v", "aws:username", null]], "m": "flat"}]})
	req := with_ctx(describe, {"aws:username": "gloo", "aws:principaltag/team": "gloo"})
	decide(req, policy_set([with_conds(allow, [c])])) == "allowed"
	old := with_conds(object.union(allow, {"v": "2008-10-17"}), [c])
	decide(req, policy_set([old])) == "implicitDeny"
}

test_variable_default if {
	c := object.union(cond("StringEquals", "aws:principaltag/team", []), {"vv": [{"s": "x", "t": [["v", "aws:principaltag/dept", "gloo"]], "m": "flat"}]})
	req := with_ctx(describe, {"aws:principaltag/team": "gloo"})
	decide(req, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_boundary_must_allow if {
	b := with_actions(stmt("boundary", "Allow", []), [{"s": "s3:*", "p": "s3:"}])
	ps := object.union(policy_set([allow, b]), {"has_boundary": true})
	decide(describe, ps) == "implicitDeny"
}

test_every_scp_level_must_allow if {
	root := object.union(stmt("scp", "Allow", []), {"l": 0})
	ou := with_actions(object.union(stmt("scp", "Allow", []), {"l": 1}), [{"s": "s3:*", "p": "s3:"}])
	decide(describe, object.union(policy_set([allow, root, ou]), {"scpl": [0, 1]})) == "implicitDeny"
	decide(describe, object.union(policy_set([allow, root]), {"scpl": [0]})) == "allowed"
}

test_rcp_does_not_apply_to_ec2 if {
	r := object.union(stmt("rcp", "Deny", []), {"pr": [{"t": "any", "s": "*"}]})
	decide(describe, policy_set([allow, r])) == "allowed"
	decide(object.union(describe, {"rcp": true}), policy_set([allow, r])) == "explicitDeny"
}

test_session_policy_intersects if {
	sess := with_actions(stmt("session", "Allow", []), [{"s": "s3:*", "p": "s3:"}])
	decide(describe, object.union(policy_set([allow, sess]), {"has_session": true})) == "implicitDeny"
}

test_resource_policy_alone_allows_same_account if {
	rp := object.union(stmt("resource", "Allow", []), {"pr": [{"t": "aws", "s": user.arn}]})
	decide(describe, object.union(policy_set([rp]), {"has_resource": true})) == "allowed"
}

test_cross_account_needs_both if {
	rp := object.union(stmt("resource", "Allow", []), {"pr": [{"t": "aws", "s": user.arn}]})
	req := object.union(describe, {"resource_account": "444455556666"})
	decide(req, object.union(policy_set([rp]), {"has_resource": true})) == "implicitDeny"
	decide(req, object.union(policy_set([rp, allow]), {"has_resource": true})) == "allowed"
}

test_not_principal_deny_with_boundary if {
	rp := object.union(stmt("resource", "Deny", []), {"npr": [{"t": "aws", "s": user.arn}]})
	b := stmt("boundary", "Allow", [])
	ps := object.union(policy_set([allow, b, rp]), {"has_resource": true, "has_boundary": true})
	decide(describe, ps) == "explicitDeny"
	decide(describe, object.union(policy_set([allow, rp]), {"has_resource": true})) == "allowed"
}

test_get_caller_identity_always_allowed if {
	req := object.union(describe, {"action": "sts:getcalleridentity", "service": "sts"})
	decide(req, policy_set([])) == "allowed"
}
