# ec2guard IAM evaluation: AWS's policy evaluation logic over a compiled policy set.
#
# Input (prepared by pkg/policycheck, see policyset.go, request.go and pattern.go):
#   input.req  the request: action (lower case), service, resource ("*" for wildcard-only actions),
#              resource_account, ctx (lower-case key -> string | [string]), ctxl (the same, every
#              value as a list; filled only when f.c1, f.any or f.all is set), principal {arn,
#              account, kind, part, srole, fuser}, uk/has_uk (condition keys of the statements the
#              action index offers that the action never carries; for the lints). Per-action views
#              of the policy set, built by policyset.go's actionView: f (which elements occur in
#              the statements the action index offers; ps.f.vars covers the whole set) and wk (the
#              statements with wildcard Action patterns or NotAction for the service, by kind of
#              pattern: x, any, p, re, na). Flags, present only when true so that OPA's rule index
#              can skip the rules they guard: star / nstar (resource is / is not "*"),
#              wildcard_only / nwo (the action has / has no resource types), rcp (RCPs apply to
#              the service), has_uk.
#   input.ps   the policy set: st (statements); the action index ax (exact action -> statements),
#              aws (service -> statements with wildcard patterns), awa (statements to check for
#              any action); scpl (SCP levels); flags has_boundary, has_session, has_resource or
#              no_resource, has_rcp or no_rcp, plain (none of session policy, SCPs, boundary) or
#              layered (some of them); f (which
#              elements occur at all, so that rules for absent ones are skipped); opset (condition
#              operators used); kidx (lower-case condition key -> [statement, condition] pairs);
#              hv (statements containing `${`)
#
# A statement has k (kind), l (org level), e (effect), v (policy Version); ag (Action patterns
# grouped: x exact set, p prefixes, g glob patterns with their mode m, any) or na (NotAction matchers); rg (Resource
# patterns grouped) and rv (Resource patterns containing `${`), or nr/nrv (NotResource); pr/npr
# (principal entries, resource policies) and pany; conditions cj (indexes, always present), cl (by
# index), ck/cks (lower-case keys), cf (by operator family: str num date bool bin ip null), c1
# (single-valued, not Null), c1x (single-valued positive string/ARN operators whose values are all
# exact strings; these are in neither c1 nor cf.str), cany, call (ForAnyValue:, ForAllValues:), cie
# (...IfExists). A condition has j, op, set, ie, k, kraw, g (string values grouped), vs (other
# values) and vv (string values containing `${`). Absent and empty lists read the same.
#
# The rules are written as partial sets over statement indices rather than functions of a
# statement: OPA computes each set once per query, which is several times faster than calling
# functions with statement objects (see docs/benchmarks-iam.md).
#
# Every rule cites the AWS documentation page it implements ("Policy evaluation logic" = IAM User
# Guide, reference_policies_evaluation-logic*.html; "Condition operators" =
# reference_policies_elements_condition_operators.html; "Policy variables" =
# reference_policies_variables.html; "NotPrincipal" = reference_policies_elements_notprincipal.html).
package ec2guard.iam

# ---------------------------------------------------------------------------------------------
# Result

result := {
	"decision": decision,
	"matched": [i | some i in effective],
	"findings": findings,
}

decision := "allowed" if allowed
else := "explicitDeny" if explicit_deny
else := "implicitDeny"

# ---------------------------------------------------------------------------------------------
# Which statements apply to the request: action -> resource -> principal -> conditions.

# Candidate statements: those indexed under the exact action (their Action names it) plus those
# whose patterns need a full check.
candidates contains i if some i in input.ps.ax[input.req.action]

candidates contains i if some i in wildcard_candidates

wildcard_candidates contains i if some i in input.ps.aws[input.req.service]

wildcard_candidates contains i if some i in input.ps.awa

# Policy variables work only under Version 2012-10-17; otherwise `${...}` is literal text ("IAM
# JSON policy elements: Version", "Policy variables").
vars_on contains i if {
	input.ps.f.vars
	some i in candidates
	input.ps.st[i].v == "2012-10-17"
}

# Guards: input.req.f (set by policyset.go's actionView) says which policy elements occur in the
# statements that can apply to the action, so that rules for absent elements are skipped at once;
# as bare references in the first expression, OPA's rule index skips them without entering them.

# Action / NotAction ("IAM JSON policy elements: Action", "NotAction"): case-insensitive, * and ?.
act contains i if some i in input.ps.ax[input.req.action]

# input.req.wk lists the statements with wildcard Action patterns or NotAction for the request's
# service by the kind of pattern they contain (policyset.go); each rule visits only its own.
act contains i if {
	input.req.wk.x
	some i in input.req.wk.x
	input.ps.st[i].ag.x[input.req.action]
}

act contains i if {
	input.req.wk.any
	some i in input.req.wk.any
}

act contains i if {
	input.req.wk.p
	some i in input.req.wk.p
	some p in input.ps.st[i].ag.p
	startswith(input.req.action, p)
}

act contains i if {
	input.req.wk.g
	some i in input.req.wk.g
	some g in input.ps.st[i].ag.g
	ec2guard.glob_match("flat", g, input.req.action)
}

act contains i if {
	input.req.wk.na
	some i in input.req.wk.na
	not pattern_list_hit(input.ps.st[i].na, input.req.action)
}

pattern_list_hit(ms, value) if {
	some m in ms
	pattern_hit(m, value)
}

pattern_hit(m, _) if m.any

pattern_hit(m, value) if m.x == value

pattern_hit(m, value) if startswith(value, m.p)

pattern_hit(m, value) if ec2guard.glob_match(m.m, m.g, value)

# Resource / NotResource ("IAM JSON policy elements: Resource", "NotResource"): case-sensitive ARN
# match, wildcards stay within an ARN segment except in the resource part.
res contains i if {
	input.req.f.noresource
	some i in act
	not resource_element(input.ps.st[i])
	not notresource_element(input.ps.st[i])
}

res contains i if {
	some i in act
	input.ps.st[i].rg.any
}

# A wildcard-only action is authorized against "*": only the pattern "*" covers it ("Actions,
# resources, and condition keys for Amazon EC2": actions without resource types need Resource "*").
# A request for "*" on an action with resource types (CLI use): an Allow for some ARN covers part of
# it, a Deny for some ARN does not deny all of it.
res contains i if {
	input.req.star
	input.req.nwo
	some i in act
	input.ps.st[i].e == "Allow"
	resource_element(input.ps.st[i])
}

res contains i if {
	input.req.nstar
	some i in act
	input.ps.st[i].rg.x[input.req.resource]
}

res contains i if {
	input.req.nstar
	some i in act
	some p in input.ps.st[i].rg.p
	startswith(input.req.resource, p)
}

res contains i if {
	input.req.nstar
	some i in act
	some g in input.ps.st[i].rg.g
	ec2guard.glob_match("arn", g, input.req.resource)
}

res contains i if {
	input.req.f.rv
	input.req.nstar
	vo := vars_on
	some i in act
	some m in input.ps.st[i].rv
	variable_pattern_hit(i in vo, m, input.req.resource)
}

res contains i if {
	input.req.f.nr
	some i in act
	notresource_element(input.ps.st[i])
	not notresource_excluded[i]
}

resource_element(s) if s.rg

resource_element(s) if s.rv

notresource_element(s) if s.nr

notresource_element(s) if s.nrv

# A NotResource statement is excluded when one of its patterns matches the request or cannot be
# resolved (an unresolvable variable makes the element fail: "Policy variables").
notresource_excluded contains i if {
	input.req.nstar
	some i in act
	pattern_list_hit(input.ps.st[i].nr, input.req.resource)
}

notresource_excluded contains i if {
	input.req.f.rv
	input.req.nstar
	vo := vars_on
	some i in act
	some m in input.ps.st[i].nrv
	variable_pattern_hit(i in vo, m, input.req.resource)
}

notresource_excluded contains i if {
	input.req.f.rv
	input.req.nstar
	vo := vars_on
	some i in act
	vo[i]
	some m in input.ps.st[i].nrv
	not tokens_glob(m.t)
}

notresource_excluded contains i if {
	input.req.star
	some i in act
	some m in input.ps.st[i].nr
	m.any
}

notresource_excluded contains i if {
	input.req.star
	input.req.nwo
	some i in act
	input.ps.st[i].e == "Deny"
}

# A pattern containing `${`: substituted when the statement's policy has Version 2012-10-17 (vars
# is true), literal text otherwise.
# The substituted pattern is matched by ec2guard.glob_match (pkg/policycheck/glob.go, no regular
# expression); the substituted value is matched literally ("Policy variables": a "*" in a user name
# is not a wildcard), and its colons separate no ARN segment.
variable_pattern_hit(true, m, value) if ec2guard.glob_match(m.m, tokens_glob(m.t), value)

variable_pattern_hit(false, m, value) if pattern_hit(m, value)

tokens_glob(t) := concat("", frags) if {
	frags := [f | some tok in t; f := token_fragment(tok)]
	count(frags) == count(t)
}

token_fragment(tok) := tok[1] if tok[0] != "v"

token_fragment(tok) := glob_escape(v) if {
	tok[0] == "v"
	v := variable_value(tok)
}

# A variable takes the request's single value for the key; when the key is missing (or
# multivalued) the default `${key, 'default'}` applies; with neither it cannot be resolved
# ("Policy variables": "Specifying default values", "Request information that you can use").
variable_value(tok) := v if {
	v := input.req.ctx[tok[1]]
	is_string(v)
	v != ""
}

variable_value(tok) := tok[2] if {
	not single_value(tok[1])
	is_string(tok[2])
	tok[2] != ""
}

single_value(k) if {
	v := input.req.ctx[k]
	is_string(v)
	v != ""
}

# glob_escape is globEscape(s, true) of glob.go: wildcards, the backslash and colons literal.
glob_escape(s) := strings.replace_n({"\\": "\\\\", "*": "\\*", "?": "\\?", ":": "\\:"}, s)

# ---------------------------------------------------------------------------------------------
# Principal / NotPrincipal (resource-based policies only; "IAM JSON policy elements: Principal",
# "NotPrincipal"). Levels: "match" (the principal itself, or "*"), "session_user"/"session_role"
# (the IAM user or role behind a federated-user or role session), "account" (the principal's
# account).

# arp: action, resource and principal match. Without a resource-based policy (no_resource) that is
# every statement in res.
arp contains i if {
	input.ps.no_resource
	some i in res
}

arp contains i if {
	input.ps.has_resource
	some i in res
	input.ps.st[i].k != "resource"
}

arp contains i if {
	input.ps.has_resource
	rl := rlevel
	some i in res
	rl[i]
}

rlevel[i] := best_level(levels) if {
	input.ps.has_resource
	some i in res
	input.ps.st[i].k == "resource"
	levels := {l | some e in input.ps.st[i].pr; l := entry_level(e)}
	count(levels) > 0
}

rlevel[i] := "match" if {
	input.ps.has_resource
	some i in res
	input.ps.st[i].k == "resource"
	input.ps.st[i].npr
	not notprincipal_excludes(input.ps.st[i])
}

# "NotPrincipal": a Deny with NotPrincipal in a resource-based policy always denies a principal
# that has a permissions boundary, whatever NotPrincipal lists ("Permissions boundaries for IAM
# entities").
rlevel[i] := "match" if {
	input.ps.has_resource
	some i in res
	input.ps.st[i].k == "resource"
	input.ps.st[i].npr
	notprincipal_excludes(input.ps.st[i])
	input.ps.st[i].e == "Deny"
	input.ps.has_boundary
}

notprincipal_excludes(s) if {
	some e in s.npr
	entry_level(e)
}

best_level(ls) := "match" if "match" in ls

best_level(ls) := "session_user" if {
	not "match" in ls
	"session_user" in ls
}

best_level(ls) := "session_role" if {
	not "match" in ls
	not "session_user" in ls
	"session_role" in ls
}

best_level(ls) := "account" if {
	not "match" in ls
	not "session_user" in ls
	not "session_role" in ls
	"account" in ls
}

entry_level(e) := "match" if e.t == "any"

entry_level(e) := "match" if {
	e.t in {"service", "federated", "canonical"}
	e.s == input.req.principal.arn
}

entry_level(e) := "account" if {
	e.t == "aws"
	e.acct
	e.acct == input.req.principal.account
}

entry_level(e) := "session_role" if {
	e.t == "aws"
	e.role
	input.req.principal.kind == "assumed-role"
	e.part == input.req.principal.part
	e.racct == input.req.principal.account
	e.role == input.req.principal.srole
}

entry_level(e) := "session_user" if {
	e.t == "aws"
	input.req.principal.kind == "federated-user"
	e.s == input.req.principal.fuser
}

entry_level(e) := "match" if {
	e.t == "aws"
	not e.acct
	e.s == input.req.principal.arn
}

# ---------------------------------------------------------------------------------------------
# Conditions ("Condition operators", "Creating a condition with multiple keys or values"): all
# conditions of a statement must hold (AND); several values of one condition are ORed.

applies contains i if {
	ct := cond_true
	some i in arp
	every j in input.ps.st[i].cj {
		ct[[i, j]]
	}
}

# input.req.ctxl holds each context key's values as a list.

# "Condition operator to check existence of condition keys": Null true means the key is absent.
cond_true contains [i, c.j] if {
	input.req.f.null
	some i in arp
	some c in input.ps.st[i].cf.null
	input.req.ctx[c.k]
	some v in c.vs
	v.s == "false"
}

cond_true contains [i, c.j] if {
	input.req.f.null
	some i in arp
	some c in input.ps.st[i].cf.null
	not input.req.ctx[c.k]
	some v in c.vs
	v.s == "true"
}

# A missing key: false, except for ...IfExists and the negated operators ("Condition operators":
# "...IfExists condition operators"; a negated operator matches a missing key).
cond_true contains [i, c.j] if {
	input.req.f.ie
	some i in arp
	some c in input.ps.st[i].cie
	c.set == ""
	not input.req.ctx[c.k]
}

cond_true contains [i, c.j] if {
	input.req.f.neg
	some i in arp
	some c in input.ps.st[i].c1
	negated_operators[c.op]
	not input.req.ctx[c.k]
}

# A single-valued operator needs a single value; on a multivalued key it does not match ("Single-
# valued vs. multivalued context keys": use a set operator for multivalued keys).
# c1x: positive string/ARN operators with exact values only (policyset.go); the request's single
# value must be one of them.
cond_true contains [i, c.j] if {
	input.req.f.strx
	some i in arp
	some c in input.ps.st[i].c1x
	c.g.x[input.req.ctx[c.k]]
}

cond_true contains [i, c.j] if {
	input.req.f.c1
	vt := value_true
	some i in arp
	some c in input.ps.st[i].c1
	v := input.req.ctx[c.k]
	is_string(v)
	vt[[i, c.j, v]]
}

# ForAnyValue: at least one request value matches; a missing key does not match. ForAllValues:
# every request value matches; true when the key is missing or empty ("Set operators for
# multivalued context keys").
cond_true contains [i, c.j] if {
	input.req.f.any
	vt := value_true
	some i in arp
	some c in input.ps.st[i].cany
	some v in input.req.ctxl[c.k]
	vt[[i, c.j, v]]
}

cond_true contains [i, c.j] if {
	input.req.f.all
	some i in arp
	some c in input.ps.st[i].call
	not input.req.ctx[c.k]
}

cond_true contains [i, c.j] if {
	input.req.f.all
	vt := value_true
	some i in arp
	some c in input.ps.st[i].call
	every v in input.req.ctxl[c.k] {
		vt[[i, c.j, v]]
	}
}

negated_operators := {
	"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals",
	"DateNotEquals", "NotIpAddress", "ArnNotEquals", "ArnNotLike",
}

# value_true holds [i, j, v]: request value v satisfies condition j of statement i.

# String and ARN operators (ArnEquals behaves as ArnLike: "ARN condition operators"): a positive
# operator matches when some policy value matches; a negated one when none matches and every
# policy value could be resolved.
value_true contains [i, j, v] if {
	input.req.f.str
	some [i, j, v] in string_hit
	not negated_operators[input.ps.st[i].cl[j].op]
}

value_true contains [i, c.j, v] if {
	input.req.f.str
	input.req.f.neg
	sh := string_hit
	su := string_unresolved
	some i in arp
	some c in input.ps.st[i].cf.str
	negated_operators[c.op]
	some v in input.req.ctxl[c.k]
	not sh[[i, c.j, v]]
	not su[[i, c.j]]
}

string_hit contains [i, c.j, v] if {
	input.req.f.str
	some i in arp
	some c in input.ps.st[i].cf.str
	some v in input.req.ctxl[c.k]
	c.g.x[v]
}

string_hit contains [i, c.j, v] if {
	input.req.f.strany
	some i in arp
	some c in input.ps.st[i].cf.str
	c.g.any
	some v in input.req.ctxl[c.k]
}

string_hit contains [i, c.j, v] if {
	input.req.f.strp
	some i in arp
	some c in input.ps.st[i].cf.str
	some p in c.g.p
	some v in input.req.ctxl[c.k]
	startswith(v, p)
}

string_hit contains [i, c.j, v] if {
	input.req.f.strglob
	some i in arp
	some c in input.ps.st[i].cf.str
	some g in c.g.g
	some v in input.req.ctxl[c.k]
	ec2guard.glob_match(c.g.m, g, v)
}

string_hit contains [i, c.j, v] if {
	input.req.f.vv
	vo := vars_on
	some i in arp
	some c in input.ps.st[i].cf.str
	some v in input.req.ctxl[c.k]
	some m in c.vv
	variable_pattern_hit(i in vo, m, v)
}

string_unresolved contains [i, c.j] if {
	input.req.f.vv
	vo := vars_on
	some i in arp
	vo[i]
	some c in input.ps.st[i].cf.str
	some m in c.vv
	not tokens_glob(m.t)
}

value_true contains [i, c.j, v] if {
	input.req.f.bin
	some i in arp
	some c in input.ps.st[i].cf.bin
	some v in input.req.ctxl[c.k]
	some m in c.vs
	m.s == v
}

value_true contains [i, c.j, v] if {
	input.req.f.bool
	some i in arp
	some c in input.ps.st[i].cf.bool
	some v in input.req.ctxl[c.k]
	lower(v) in {"true", "false"}
	some m in c.vs
	m.s == lower(v)
}

# Numeric and date operators compare numbers ("Numeric condition operators", "Date condition
# operators": epoch seconds, RFC 3339 date-times or plain dates).
value_true contains [i, c.j, v] if {
	input.req.f.num
	some i in arp
	some c in input.ps.st[i].cf.num
	not negated_operators[c.op]
	some v in input.req.ctxl[c.k]
	n := to_number(v)
	some m in c.vs
	is_number(m.n)
	compare(c.op, n, m.n)
}

value_true contains [i, c.j, v] if {
	input.req.f.num
	some i in arp
	some c in input.ps.st[i].cf.num
	negated_operators[c.op]
	some v in input.req.ctxl[c.k]
	n := to_number(v)
	every m in c.vs {
		is_number(m.n)
		n != m.n
	}
}

value_true contains [i, c.j, v] if {
	input.req.f.date
	some i in arp
	some c in input.ps.st[i].cf.date
	not negated_operators[c.op]
	some v in input.req.ctxl[c.k]
	n := parse_date(v)
	some m in c.vs
	is_number(m.n)
	compare(c.op, n, m.n)
}

value_true contains [i, c.j, v] if {
	input.req.f.date
	some i in arp
	some c in input.ps.st[i].cf.date
	negated_operators[c.op]
	some v in input.req.ctxl[c.k]
	n := parse_date(v)
	every m in c.vs {
		is_number(m.n)
		n != m.n
	}
}

compare(op, a, b) if {
	op in {"NumericEquals", "DateEquals"}
	a == b
}

compare(op, a, b) if {
	op in {"NumericLessThan", "DateLessThan"}
	a < b
}

compare(op, a, b) if {
	op in {"NumericLessThanEquals", "DateLessThanEquals"}
	a <= b
}

compare(op, a, b) if {
	op in {"NumericGreaterThan", "DateGreaterThan"}
	a > b
}

compare(op, a, b) if {
	op in {"NumericGreaterThanEquals", "DateGreaterThanEquals"}
	a >= b
}

parse_date(v) := to_number(v) * 1000000000 if regex.match(`^-?[0-9]+$`, v)

parse_date(v) := time.parse_rfc3339_ns(v) if {
	not regex.match(`^-?[0-9]+$`, v)
	contains(v, "T")
}

parse_date(v) := time.parse_ns("2006-01-02", v) if regex.match(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`, v)

# IP address operators ("IP address condition operators"): a single address counts as /32 (/128).
value_true contains [i, c.j, v] if {
	input.req.f.ip
	some i in arp
	some c in input.ps.st[i].cf.ip
	c.op == "IpAddress"
	some v in input.req.ctxl[c.k]
	some m in c.vs
	m.cidr
	net.cidr_contains(m.cidr, v)
}

value_true contains [i, c.j, v] if {
	input.req.f.ip
	some i in arp
	some c in input.ps.st[i].cf.ip
	c.op == "NotIpAddress"
	some v in input.req.ctxl[c.k]
	valid_ip(v)
	every m in c.vs {
		m.cidr
		not net.cidr_contains(m.cidr, v)
	}
}

valid_ip(v) if net.cidr_contains("0.0.0.0/0", v)

valid_ip(v) if net.cidr_contains("::/0", v)

# ---------------------------------------------------------------------------------------------
# Combining policy types ("Policy evaluation logic", "How AWS enforcement code logic evaluates
# requests to allow or deny access", "Cross-account policy evaluation logic").

# Statements that take part in the decision. RCP statements only where RCPs apply: only for the
# services that support them ("Resource control policies (RCPs)", "List of AWS services that support
# RCPs"); input.req.rcp carries the catalog's answer for the action's service. EC2 is not one of
# them. AWS attaches RCPFullAWSAccess at every level and it cannot be detached, so RCPs only deny.
effective contains i if {
	input.ps.no_rcp
	some i in applies
}

effective contains i if {
	input.ps.has_rcp
	some i in applies
	input.ps.st[i].k != "rcp"
}

effective contains i if {
	input.req.rcp
	some i in applies
	input.ps.st[i].k == "rcp"
}

# Deny evaluation: an applicable Deny in any policy is final.
explicit_deny if {
	some i in effective
	input.ps.st[i].e == "Deny"
}

allowing_kinds contains input.ps.st[i].k if {
	some i in effective
	input.ps.st[i].e == "Allow"
}

# Resource-based policy allows by principal level.
resource_allow_levels contains rl[i] if {
	input.ps.has_resource
	rl := rlevel
	some i in effective
	input.ps.st[i].k == "resource"
	input.ps.st[i].e == "Allow"
}

resource_allows_principal if {
	some l in resource_allow_levels
	l in {"match", "session_user", "session_role"}
}

resource_allows_account if "account" in resource_allow_levels

same_account if {
	input.req.principal.account != ""
	input.req.principal.account == input.req.resource_account
}

# SCPs: every level of the organization must allow ("Service control policies (SCPs)", "SCP
# evaluation"); an empty list means no organization.
scps_allow if count(input.ps.scpl) == 0

scps_allow if {
	count(input.ps.scpl) > 0
	sl := scp_level_allows
	every l in input.ps.scpl {
		sl[l]
	}
}

scp_level_allows contains input.ps.st[i].l if {
	some i in effective
	input.ps.st[i].k == "scp"
	input.ps.st[i].e == "Allow"
}

# sts:GetCallerIdentity needs no permission and cannot be denied ("GetCallerIdentity", AWS STS API
# Reference).
always_allowed if {
	input.req.action == "sts:getcalleridentity"
	input.req.principal.kind != "anonymous"
}

allowed if {
	input.req.action == "sts:getcalleridentity"
	always_allowed
}

# input.ps.plain: the set has no session policy, SCPs or permissions boundary, so those checks hold
# trivially; input.ps.layered: it has at least one of them (policyset.go sets exactly one).
allowed if {
	input.ps.plain
	not explicit_deny
	core_allows
}

allowed if {
	input.ps.layered
	not explicit_deny
	core_allows
	session_allows
	scps_allow
	boundary_allows
}

# Identity-based and resource-based policies ("Policy evaluation for requests within a single
# account": within one account an Allow in either is enough). The most common case comes first.
core_allows if {
	allowing_kinds.identity
	same_account
	not sts_needs_trust
	input.req.principal.kind != "service"
}

core_allows if {
	input.req.principal.kind == "service"
	resource_allows_principal
}

core_allows if {
	input.ps.has_resource
	input.req.principal.kind != "service"
	same_account
	not sts_needs_trust
	resource_allows_principal
}

# A role trust policy must allow the principal (or its account, then with an identity Allow) even
# within one account ("How IAM roles differ from resource-based policies").
core_allows if {
	input.ps.has_resource
	input.req.principal.kind != "service"
	same_account
	sts_needs_trust
	resource_allows_principal
}

core_allows if {
	input.ps.has_resource
	input.req.principal.kind != "service"
	same_account
	sts_needs_trust
	resource_allows_account
	allowing_kinds.identity
}

# Cross-account: both the identity policy and the resource policy must allow ("Cross-account
# policy evaluation logic").
core_allows if {
	input.ps.has_resource
	input.req.principal.kind != "service"
	not same_account
	allowing_kinds.identity
	resource_allows_principal
}

core_allows if {
	input.ps.has_resource
	input.req.principal.kind != "service"
	not same_account
	allowing_kinds.identity
	resource_allows_account
}

sts_needs_trust if {
	input.req.service == "sts"
	input.ps.has_resource
}

# Session policies limit the session ("Session policies").
session_allows if not input.ps.has_session

session_allows if allowing_kinds.session

# Permissions boundary ("Permissions boundaries for IAM entities", "Evaluating effective
# permissions with boundaries"): the boundary must allow, except that within one account a
# resource-based policy naming the IAM user or role session directly is not limited by it.
boundary_allows if not input.ps.has_boundary

boundary_allows if allowing_kinds.boundary

boundary_allows if {
	input.ps.has_boundary
	not allowing_kinds.boundary
	same_account
	resource_bypasses_boundary
}

resource_bypasses_boundary if {
	input.req.principal.kind in {"user", "assumed-role", "federated-user"}
	rl := rlevel
	some i in effective
	input.ps.st[i].k == "resource"
	input.ps.st[i].e == "Allow"
	rl[i] == "match"
}

resource_bypasses_boundary if {
	input.req.principal.kind == "role"
	some i in effective
	input.ps.st[i].k == "resource"
	input.ps.st[i].e == "Allow"
	input.ps.st[i].pany
	rl := rlevel
	rl[i] == "match"
}

# ---------------------------------------------------------------------------------------------
# Lints (explanations): what makes statements ineffective for this request.

region_keys := {"aws:requestedregion", "ec2:region"}

# An Allow for a wildcard-only action scoped to ARNs never applies (RESOURCE_MISMATCH); neither
# does a Deny (INEFFECTIVE_DENY). act - res: the statements whose Resource element does not cover
# "*", as one set difference rather than a test per statement.
resource_findings := {
	"Allow": {"code": "RESOURCE_MISMATCH"},
	"Deny": {"code": "INEFFECTIVE_DENY", "reason": "resource"},
}

findings contains object.union(resource_findings[input.ps.st[i].e], {"i": i}) if {
	input.req.wildcard_only
	some i in act - res
	resource_element(input.ps.st[i])
}

# A condition on a key the action never carries (input.ps.kidx lists, per lower-case key, the
# [statement, condition] pairs that use it).
findings contains {"code": "UNSUPPORTED_CONDITION_KEY", "i": i, "key": input.ps.st[i].cl[j].kraw} if {
	input.req.has_uk
	some k in input.req.uk
	some [i, j] in input.ps.kidx[k]
	act[i]
}

# A Deny that can never apply to this action because it is conditioned on a key the action never
# carries (and the condition needs the key); for Denies scoped to ARNs see RESOURCE_MISMATCH above.

findings contains {"code": "INEFFECTIVE_DENY", "i": i, "reason": "condition", "key": c.kraw} if {
	input.req.has_uk
	some k in input.req.uk
	some [i, j] in input.ps.kidx[k]
	input.ps.st[i].e == "Deny"
	act[i]
	c := input.ps.st[i].cl[j]
	not true_when_missing(c)
}

true_when_missing(c) if {
	c.op == "Null"
	some v in c.vs
	v.s == "true"
}

true_when_missing(c) if {
	c.op != "Null"
	c.set == ""
	c.ie
}

true_when_missing(c) if {
	c.op != "Null"
	c.set == ""
	negated_operators[c.op]
}

true_when_missing(c) if {
	c.op != "Null"
	c.set == "ForAllValues"
}

# An Allow that matches except for conditions on the region: the policy pins other regions. (f.region:
# some statement the action index offers has a condition on a key of region_keys.)
findings contains {"code": "REGION_MISMATCH", "i": i, "key": key} if {
	input.req.f.region
	some [i, key] in region_mismatch
}

region_mismatch contains [i, input.ps.st[i].cl[j].kraw] if {
	input.req.f.region
	not allowed
	ap := applies
	ct := cond_true
	some i in arp
	input.ps.st[i].e == "Allow"
	count(input.ps.st[i].cks & region_keys) > 0
	not ap[i]
	failing := [j | some j in input.ps.st[i].cj; not ct[[i, j]]]
	every j in failing {
		region_keys[input.ps.st[i].ck[j]]
	}
	some j in failing
}

# `${...}` in a policy without Version 2012-10-17 is literal text, not a policy variable.
findings contains {"code": "VARIABLE_IN_OLD_VERSION", "i": i} if {
	input.ps.f.vars
	some i in input.ps.hv
	input.ps.st[i].v != "2012-10-17"
}
