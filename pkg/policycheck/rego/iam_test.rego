# Unit tests of the evaluation rules, run from Go by rego_test.go (OPA's tester). Inputs are written
# in the compiled form policyset.go produces; see iam.rego for the schema.
package ec2guard.iam_test

import data.ec2guard.iam

user := {
	"arn": "arn:aws:iam::111122223333:user/gloo", "account": "111122223333", "kind": "user",
	"partition": "aws", "session_role": "", "federated_user": "",
}

describe := {
	"action": "ec2:describeinstances", "service": "ec2", "resource": "*",
	"resource_account": "111122223333", "wildcard_only": true,
	"context": {"aws:requestedregion": "us-east-1", "aws:username": "gloo"},
	"principal": user, "unsupported_keys": {"ec2:resourcetag/owner"}, "has_unsupported_keys": true,
	"resource_is_star": true, "elements": all_flags,
	"context_lists": {"aws:requestedregion": ["us-east-1"], "aws:username": ["gloo"]},
}

# Every element flag on (policyset.go sets only those that occur; the rules must not depend on it).
all_flags := {f: true | some f in ["na", "nr", "rv", "vars", "vv", "str", "strx", "num", "date", "bool", "bin", "ip", "null", "ie", "any", "all", "noresource", "strany", "strp", "strglob", "neg", "c1", "region"]}

star := {"any": true}

describe_action := {"exact": "ec2:describeinstances"}

# group mirrors groupMatchers in policyset.go.
group(ms) := g if {
	base := {
		"exact": {m.exact: true | some m in ms; m.exact},
		"prefixes": [m.prefix | some m in ms; m.prefix],
		"globs": [m.glob | some m in ms; m.glob],
	}
	g := object.union(object.union(base, {"any": true | some m in ms; m.any}), {"mode": m.mode | some m in ms; m.glob})
}

stmt(kind, effect, conds) := with_conds({
	"kind": kind, "level": 0, "index": 0, "effect": effect, "version": "2012-10-17",
	"actions": group([describe_action]), "resources": group([star]),
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
	"conditions": cl,
	"condition_indexes": [j | some j, _ in cl],
	"condition_keys": [c.key | some c in cl],
	"conditions_by_family": {f: [c | some c in cl; family(c.operator) == f] | some c0 in cl; f := family(c0.operator)},
	"single_valued_conditions": [c | some c in cl; c.operator != "Null"; c.set_operator == ""],
	"for_any_value_conditions": [c | some c in cl; c.operator != "Null"; c.set_operator == "ForAnyValue"],
	"for_all_values_conditions": [c | some c in cl; c.operator != "Null"; c.set_operator == "ForAllValues"],
	"if_exists_conditions": [c | some c in cl; c.if_exists],
	"has_region_condition": count([c | some c in cl; c.region_key]) > 0,
}) if {
	cl := [object.union({"values_with_variables": []}, object.union(c, {"index": j, "string_values": group(c.values)})) | some j, c in conds]
}

allow := stmt("identity", "Allow", [])

deny := stmt("identity", "Deny", [])

policy_set(stmts) := {
	"statements": stmts, "statements_by_action": {}, "wildcard_statements_by_service": {},
	"statements_for_any_action": numbers.range(0, count(stmts) - 1), "scp_levels": [],
	"statements_with_variables": [], "elements": all_flags,
	"conditions_by_key": {k: [[i, j] | some i, s in stmts; some j, c in s.conditions; c.key == k] | some s0 in stmts; some c0 in s0.conditions; k := c0.key},
	"has_boundary": false, "has_session": false, "has_resource": false, "layered": true,
	"has_rcp": true, # the general effective rules; input_for adds no_resource unless has_resource
}

cond(op, key, vals) := {
	"operator": op, "set_operator": "", "if_exists": false, "key": key, "key_as_written": key,
	"values": vals, "region_key": key in {"aws:requestedregion", "ec2:region"},
}

region_is(r) := cond("StringEquals", "aws:requestedregion", [{"text": r, "exact": r}])

with_actions(s, ms) := object.union(object.remove(s, ["actions"]), {"actions": group(ms)})

with_resources(s, ms) := object.union(object.remove(s, ["resources"]), {"resources": group(ms)})

# with_ctx replaces a request's context (both forms, as request.go builds them).
with_ctx(req, ctx) := object.union(req, {"context": ctx, "context_lists": {k: as_list(v) | some k, v in ctx}})

as_list(v) := v if is_array(v)

as_list(v) := [v] if is_string(v)

# input_for is the Rego input for a request and a policy set: the request's wildcard_statements
# lists, as policyset.go's actionView builds them, for the statements in
# ps.statements_for_any_action (all of them, see policy_set).
input_for(req, ps) := {"req": object.union(req, {"wildcard_statements": wk, flag(req): true}), "ps": resource_flags(ps)} if {
	wk := {k: l |
		some k in ["exact", "any", "prefixes", "globs", "not_actions"]
		l := [i | some i in ps.statements_for_any_action; has_kind(ps.statements[i], k)]
		count(l) > 0
	}
}

flag(req) := "resource_is_star" if req.resource == "*"

flag(req) := "resource_is_not_star" if req.resource != "*"

resource_flags(ps) := ps if ps.has_resource == true

resource_flags(ps) := object.union(ps, {"no_resource": true}) if not ps.has_resource

has_kind(s, "not_actions") if s.not_actions

has_kind(s, "exact") if count(s.actions.exact) > 0

has_kind(s, "any") if s.actions.any

has_kind(s, "prefixes") if count(s.actions.prefixes) > 0

has_kind(s, "globs") if count(s.actions.globs) > 0

decide(req, ps) := d if {
	d := iam.decision with input as input_for(req, ps)
}

test_default_is_implicit_deny if decide(describe, policy_set([])) == "implicitDeny"

test_allow if decide(describe, policy_set([allow])) == "allowed"

test_explicit_deny_wins if decide(describe, policy_set([allow, deny])) == "explicitDeny"

test_action_prefix_wildcard if {
	s := with_actions(allow, [{"prefix": "ec2:describe"}])
	decide(describe, policy_set([s])) == "allowed"
}

test_not_action_excludes if {
	s := object.remove(object.union(allow, {"not_actions": [{"prefix": "ec2:describe"}]}), ["actions"])
	decide(describe, policy_set([s])) == "implicitDeny"
}

test_not_action_includes_others if {
	s := object.remove(object.union(allow, {"not_actions": [{"prefix": "s3:"}]}), ["actions"])
	decide(describe, policy_set([s])) == "allowed"
}

test_wildcard_only_action_needs_star if {
	s := with_resources(allow, [{"glob": "arn:aws:ec2:*:*:instance/*", "mode": "arn"}])
	decide(describe, policy_set([s])) == "implicitDeny"
}

test_resource_mismatch_lint if {
	s := with_resources(allow, [{"glob": "x", "mode": "arn"}])
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
	s := with_conds(allow, [cond("StringEquals", "ec2:resourcetag/owner", [{"exact": "Gloo"}])])
	decide(describe, policy_set([s])) == "implicitDeny"
}

test_missing_key_negated_operator_matches if {
	s := with_conds(allow, [cond("StringNotEquals", "ec2:resourcetag/owner", [{"exact": "Gloo"}])])
	decide(describe, policy_set([s])) == "allowed"
}

test_if_exists_on_missing_key if {
	c := object.union(cond("StringEquals", "ec2:resourcetag/owner", [{"exact": "Gloo"}]), {"if_exists": true})
	decide(describe, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_multiple_values_or if {
	c := cond("StringEquals", "aws:requestedregion", [{"exact": "eu-west-1"}, {"exact": "us-east-1"}])
	decide(describe, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_multiple_keys_and if {
	c2 := cond("StringEquals", "aws:username", [{"exact": "other"}])
	decide(describe, policy_set([with_conds(allow, [region_is("us-east-1"), c2])])) == "implicitDeny"
}

test_for_all_values_missing_key_true if {
	c := object.union(cond("StringEquals", "aws:tagkeys", [{"exact": "a"}]), {"set_operator": "ForAllValues"})
	decide(describe, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_for_any_value_missing_key_false if {
	c := object.union(cond("StringEquals", "aws:tagkeys", [{"exact": "a"}]), {"set_operator": "ForAnyValue"})
	decide(describe, policy_set([with_conds(allow, [c])])) == "implicitDeny"
}

test_variable_substitution if {
	c := object.union(cond("StringEquals", "aws:principaltag/team", []), {"values_with_variables": [{"exact": "${aws:username}", "tokens": [["v", "aws:username", null]], "mode": "flat"}]})
	req := with_ctx(describe, {"aws:username": "gloo", "aws:principaltag/team": "gloo"})
	decide(req, policy_set([with_conds(allow, [c])])) == "allowed"
	old := with_conds(object.union(allow, {"version": "2008-10-17"}), [c])
	decide(req, policy_set([old])) == "implicitDeny"
}

test_variable_default if {
	c := object.union(cond("StringEquals", "aws:principaltag/team", []), {"values_with_variables": [{"tokens": [["v", "aws:principaltag/dept", "gloo"]], "mode": "flat"}]})
	req := with_ctx(describe, {"aws:principaltag/team": "gloo"})
	decide(req, policy_set([with_conds(allow, [c])])) == "allowed"
}

test_boundary_must_allow if {
	b := with_actions(stmt("boundary", "Allow", []), [{"prefix": "s3:"}])
	ps := object.union(policy_set([allow, b]), {"has_boundary": true})
	decide(describe, ps) == "implicitDeny"
}

test_every_scp_level_must_allow if {
	root := object.union(stmt("scp", "Allow", []), {"level": 0})
	ou := with_actions(object.union(stmt("scp", "Allow", []), {"level": 1}), [{"prefix": "s3:"}])
	decide(describe, object.union(policy_set([allow, root, ou]), {"scp_levels": [0, 1]})) == "implicitDeny"
	decide(describe, object.union(policy_set([allow, root]), {"scp_levels": [0]})) == "allowed"
}

test_rcp_does_not_apply_to_ec2 if {
	r := object.union(stmt("rcp", "Deny", []), {"principals": [{"type": "any", "value": "*"}]})
	decide(describe, policy_set([allow, r])) == "allowed"
	decide(object.union(describe, {"rcps_apply": true}), policy_set([allow, r])) == "explicitDeny"
}

test_session_policy_intersects if {
	sess := with_actions(stmt("session", "Allow", []), [{"prefix": "s3:"}])
	decide(describe, object.union(policy_set([allow, sess]), {"has_session": true})) == "implicitDeny"
}

test_resource_policy_alone_allows_same_account if {
	rp := object.union(stmt("resource", "Allow", []), {"principals": [{"type": "aws", "value": user.arn}]})
	decide(describe, object.union(policy_set([rp]), {"has_resource": true})) == "allowed"
}

test_cross_account_needs_both if {
	rp := object.union(stmt("resource", "Allow", []), {"principals": [{"type": "aws", "value": user.arn}]})
	req := object.union(describe, {"resource_account": "444455556666"})
	decide(req, object.union(policy_set([rp]), {"has_resource": true})) == "implicitDeny"
	decide(req, object.union(policy_set([rp, allow]), {"has_resource": true})) == "allowed"
}

test_not_principal_deny_with_boundary if {
	rp := object.union(stmt("resource", "Deny", []), {"not_principals": [{"type": "aws", "value": user.arn}]})
	b := stmt("boundary", "Allow", [])
	ps := object.union(policy_set([allow, b, rp]), {"has_resource": true, "has_boundary": true})
	decide(describe, ps) == "explicitDeny"
	decide(describe, object.union(policy_set([allow, rp]), {"has_resource": true})) == "allowed"
}

test_get_caller_identity_always_allowed if {
	req := object.union(describe, {"action": "sts:getcalleridentity", "service": "sts"})
	decide(req, policy_set([])) == "allowed"
}
