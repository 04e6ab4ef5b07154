# ec2guard IAM evaluation: AWS's policy evaluation logic over a compiled policy set.
#
# Input: the Go types of pkg/policycheck/input.go say what each key holds (input.ps is a
# regoPolicySet, built once per policy set by policyset.go; input.req a regoRequest, built per
# evaluation by request.go, with the per-action view of the policy set from actionView). In short:
#   input.req  action (lower case), service, resource ("*" for wildcard-only actions),
#              resource_account, context (lower-case key -> string | [string]), context_lists (the
#              same, every value as a list; filled only when elements.c1, .any or .all is set),
#              principal {arn, account, kind, partition, session_role, federated_user},
#              unsupported_keys (condition keys the offered statements use that the action never
#              carries), elements (which elements occur in the statements the action index offers;
#              input.ps.elements covers the whole set), wildcard_statements (the statements with
#              wildcard Action patterns or NotAction for the service, by kind: exact, any,
#              prefixes, globs, not_actions). Flags, present only when true so that OPA's rule
#              index can skip the rules they guard: resource_is_star / resource_is_not_star,
#              wildcard_only / not_wildcard_only, rcps_apply, has_unsupported_keys.
#   input.ps   statements; the action index statements_by_action, wildcard_statements_by_service,
#              statements_for_any_action; scp_levels; elements; conditions_by_key (lower-case key
#              -> [statement, condition] pairs); statements_with_variables; flags has_boundary,
#              has_session, has_resource or no_resource, has_rcp or no_rcp, plain or layered.
# A statement has kind, level, index, effect, version; actions (a matcher group: exact set,
# prefixes, globs with their mode, any) or not_actions (matchers); resources (group) and
# resources_with_variables, or not_resources / not_resources_with_variables; principals /
# not_principals and principal_any; condition_indexes (always present), conditions (by index),
# condition_keys, conditions_by_family (str num date bool bin ip null), single_valued_conditions,
# exact_conditions (positive single-valued string/ARN operators whose values are all exact: in
# neither single_valued_conditions nor conditions_by_family.str), for_any_value_conditions,
# for_all_values_conditions, if_exists_conditions, has_region_condition. A condition has index,
# operator, set_operator, if_exists, key, key_as_written, region_key, string_values (group), values
# (typed: text, number, cidr) and values_with_variables (matchers with tokens). Absent and empty
# lists read the same.
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
candidates contains i if some i in input.ps.statements_by_action[input.req.action]

candidates contains i if some i in wildcard_candidates

wildcard_candidates contains i if some i in input.ps.wildcard_statements_by_service[input.req.service]

wildcard_candidates contains i if some i in input.ps.statements_for_any_action

# Policy variables work only under Version 2012-10-17; otherwise `${...}` is literal text ("IAM
# JSON policy elements: Version", "Policy variables").
vars_on contains i if {
	input.ps.elements.vars
	some i in candidates
	input.ps.statements[i].version == "2012-10-17"
}

# Guards: input.req.elements (set by policyset.go's actionView) says which policy elements occur in the
# statements that can apply to the action, so that rules for absent elements are skipped at once;
# as bare references in the first expression, OPA's rule index skips them without entering them.

# Action / NotAction ("IAM JSON policy elements: Action", "NotAction"): case-insensitive, * and ?.
act contains i if some i in input.ps.statements_by_action[input.req.action]

# input.req.wildcard_statements lists the statements with wildcard Action patterns or NotAction for the request's
# service by the kind of pattern they contain (policyset.go); each rule visits only its own.
act contains i if {
	input.req.wildcard_statements.exact
	some i in input.req.wildcard_statements.exact
	input.ps.statements[i].actions.exact[input.req.action]
}

act contains i if {
	input.req.wildcard_statements.any
	some i in input.req.wildcard_statements.any
}

act contains i if {
	input.req.wildcard_statements.prefixes
	some i in input.req.wildcard_statements.prefixes
	some p in input.ps.statements[i].actions.prefixes
	startswith(input.req.action, p)
}

act contains i if {
	input.req.wildcard_statements.globs
	some i in input.req.wildcard_statements.globs
	some g in input.ps.statements[i].actions.globs
	ec2guard.glob_match("flat", g, input.req.action)
}

act contains i if {
	input.req.wildcard_statements.not_actions
	some i in input.req.wildcard_statements.not_actions
	not pattern_list_hit(input.ps.statements[i].not_actions, input.req.action)
}

pattern_list_hit(ms, value) if {
	some m in ms
	pattern_hit(m, value)
}

pattern_hit(m, _) if m.any

pattern_hit(m, value) if m.exact == value

pattern_hit(m, value) if startswith(value, m.prefix)

pattern_hit(m, value) if ec2guard.glob_match(m.mode, m.glob, value)

# Resource / NotResource ("IAM JSON policy elements: Resource", "NotResource"): case-sensitive ARN
# match, wildcards stay within an ARN segment except in the resource part.
res contains i if {
	input.req.elements.noresource
	some i in act
	not resource_element(input.ps.statements[i])
	not notresource_element(input.ps.statements[i])
}

res contains i if {
	some i in act
	input.ps.statements[i].resources.any
}

# A wildcard-only action is authorized against "*": only the pattern "*" covers it ("Actions,
# resources, and condition keys for Amazon EC2": actions without resource types need Resource "*").
# A request for "*" on an action with resource types (CLI use): an Allow for some ARN covers part of
# it, a Deny for some ARN does not deny all of it.
res contains i if {
	input.req.resource_is_star
	input.req.not_wildcard_only
	some i in act
	input.ps.statements[i].effect == "Allow"
	resource_element(input.ps.statements[i])
}

res contains i if {
	input.req.resource_is_not_star
	some i in act
	input.ps.statements[i].resources.exact[input.req.resource]
}

res contains i if {
	input.req.resource_is_not_star
	some i in act
	some p in input.ps.statements[i].resources.prefixes
	startswith(input.req.resource, p)
}

res contains i if {
	input.req.resource_is_not_star
	some i in act
	some g in input.ps.statements[i].resources.globs
	ec2guard.glob_match("arn", g, input.req.resource)
}

res contains i if {
	input.req.elements.rv
	input.req.resource_is_not_star
	vo := vars_on
	some i in act
	some m in input.ps.statements[i].resources_with_variables
	variable_pattern_hit(i in vo, m, input.req.resource)
}

res contains i if {
	input.req.elements.nr
	some i in act
	notresource_element(input.ps.statements[i])
	not notresource_excluded[i]
}

resource_element(s) if s.resources

resource_element(s) if s.resources_with_variables

notresource_element(s) if s.not_resources

notresource_element(s) if s.not_resources_with_variables

# A NotResource statement is excluded when one of its patterns matches the request or cannot be
# resolved (an unresolvable variable makes the element fail: "Policy variables").
notresource_excluded contains i if {
	input.req.resource_is_not_star
	some i in act
	pattern_list_hit(input.ps.statements[i].not_resources, input.req.resource)
}

notresource_excluded contains i if {
	input.req.elements.rv
	input.req.resource_is_not_star
	vo := vars_on
	some i in act
	some m in input.ps.statements[i].not_resources_with_variables
	variable_pattern_hit(i in vo, m, input.req.resource)
}

notresource_excluded contains i if {
	input.req.elements.rv
	input.req.resource_is_not_star
	vo := vars_on
	some i in act
	vo[i]
	some m in input.ps.statements[i].not_resources_with_variables
	not tokens_glob(m.tokens)
}

notresource_excluded contains i if {
	input.req.resource_is_star
	some i in act
	some m in input.ps.statements[i].not_resources
	m.any
}

notresource_excluded contains i if {
	input.req.resource_is_star
	input.req.not_wildcard_only
	some i in act
	input.ps.statements[i].effect == "Deny"
}

# A pattern containing `${`: substituted when the statement's policy has Version 2012-10-17 (vars
# is true), literal text otherwise.
# The substituted pattern is matched by ec2guard.glob_match (pkg/policycheck/glob.go, no regular
# expression); the substituted value is matched literally ("Policy variables": a "*" in a user name
# is not a wildcard), and its colons separate no ARN segment.
variable_pattern_hit(true, m, value) if ec2guard.glob_match(m.mode, tokens_glob(m.tokens), value)

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
	v := input.req.context[tok[1]]
	is_string(v)
	v != ""
}

variable_value(tok) := tok[2] if {
	not single_value(tok[1])
	is_string(tok[2])
	tok[2] != ""
}

single_value(k) if {
	v := input.req.context[k]
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
	input.ps.statements[i].kind != "resource"
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
	input.ps.statements[i].kind == "resource"
	levels := {l | some e in input.ps.statements[i].principals; l := entry_level(e)}
	count(levels) > 0
}

rlevel[i] := "match" if {
	input.ps.has_resource
	some i in res
	input.ps.statements[i].kind == "resource"
	input.ps.statements[i].not_principals
	not notprincipal_excludes(input.ps.statements[i])
}

# "NotPrincipal": a Deny with NotPrincipal in a resource-based policy always denies a principal
# that has a permissions boundary, whatever NotPrincipal lists ("Permissions boundaries for IAM
# entities").
rlevel[i] := "match" if {
	input.ps.has_resource
	some i in res
	input.ps.statements[i].kind == "resource"
	input.ps.statements[i].not_principals
	notprincipal_excludes(input.ps.statements[i])
	input.ps.statements[i].effect == "Deny"
	input.ps.has_boundary
}

notprincipal_excludes(s) if {
	some e in s.not_principals
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

entry_level(e) := "match" if e.type == "any"

entry_level(e) := "match" if {
	e.type in {"service", "federated", "canonical"}
	e.value == input.req.principal.arn
}

entry_level(e) := "account" if {
	e.type == "aws"
	e.account
	e.account == input.req.principal.account
}

entry_level(e) := "session_role" if {
	e.type == "aws"
	e.role
	input.req.principal.kind == "assumed-role"
	e.partition == input.req.principal.partition
	e.role_account == input.req.principal.account
	e.role == input.req.principal.session_role
}

entry_level(e) := "session_user" if {
	e.type == "aws"
	input.req.principal.kind == "federated-user"
	e.value == input.req.principal.federated_user
}

entry_level(e) := "match" if {
	e.type == "aws"
	not e.account
	e.value == input.req.principal.arn
}

# ---------------------------------------------------------------------------------------------
# Conditions ("Condition operators", "Creating a condition with multiple keys or values"): all
# conditions of a statement must hold (AND); several values of one condition are ORed.

applies contains i if {
	ct := cond_true
	some i in arp
	every j in input.ps.statements[i].condition_indexes {
		ct[[i, j]]
	}
}

# input.req.context_lists holds each context key's values as a list.

# "Condition operator to check existence of condition keys": Null true means the key is absent.
cond_true contains [i, c.index] if {
	input.req.elements.null
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.null
	input.req.context[c.key]
	some v in c.values
	v.text == "false"
}

cond_true contains [i, c.index] if {
	input.req.elements.null
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.null
	not input.req.context[c.key]
	some v in c.values
	v.text == "true"
}

# A missing key: false, except for ...IfExists and the negated operators ("Condition operators":
# "...IfExists condition operators"; a negated operator matches a missing key).
cond_true contains [i, c.index] if {
	input.req.elements.ie
	some i in arp
	some c in input.ps.statements[i].if_exists_conditions
	c.set_operator == ""
	not input.req.context[c.key]
}

cond_true contains [i, c.index] if {
	input.req.elements.neg
	some i in arp
	some c in input.ps.statements[i].single_valued_conditions
	negated_operators[c.operator]
	not input.req.context[c.key]
}

# A single-valued operator needs a single value; on a multivalued key it does not match ("Single-
# valued vs. multivalued context keys": use a set operator for multivalued keys).
# c1x: positive string/ARN operators with exact values only (policyset.go); the request's single
# value must be one of them.
cond_true contains [i, c.index] if {
	input.req.elements.strx
	some i in arp
	some c in input.ps.statements[i].exact_conditions
	c.string_values.exact[input.req.context[c.key]]
}

cond_true contains [i, c.index] if {
	input.req.elements.c1
	vt := value_true
	some i in arp
	some c in input.ps.statements[i].single_valued_conditions
	v := input.req.context[c.key]
	is_string(v)
	vt[[i, c.index, v]]
}

# ForAnyValue: at least one request value matches; a missing key does not match. ForAllValues:
# every request value matches; true when the key is missing or empty ("Set operators for
# multivalued context keys").
cond_true contains [i, c.index] if {
	input.req.elements.any
	vt := value_true
	some i in arp
	some c in input.ps.statements[i].for_any_value_conditions
	some v in input.req.context_lists[c.key]
	vt[[i, c.index, v]]
}

cond_true contains [i, c.index] if {
	input.req.elements.all
	some i in arp
	some c in input.ps.statements[i].for_all_values_conditions
	not input.req.context[c.key]
}

cond_true contains [i, c.index] if {
	input.req.elements.all
	vt := value_true
	some i in arp
	some c in input.ps.statements[i].for_all_values_conditions
	every v in input.req.context_lists[c.key] {
		vt[[i, c.index, v]]
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
	input.req.elements.str
	some [i, j, v] in string_hit
	not negated_operators[input.ps.statements[i].conditions[j].operator]
}

value_true contains [i, c.index, v] if {
	input.req.elements.str
	input.req.elements.neg
	sh := string_hit
	su := string_unresolved
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.str
	negated_operators[c.operator]
	some v in input.req.context_lists[c.key]
	not sh[[i, c.index, v]]
	not su[[i, c.index]]
}

string_hit contains [i, c.index, v] if {
	input.req.elements.str
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.str
	some v in input.req.context_lists[c.key]
	c.string_values.exact[v]
}

string_hit contains [i, c.index, v] if {
	input.req.elements.strany
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.str
	c.string_values.any
	some v in input.req.context_lists[c.key]
}

string_hit contains [i, c.index, v] if {
	input.req.elements.strp
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.str
	some p in c.string_values.prefixes
	some v in input.req.context_lists[c.key]
	startswith(v, p)
}

string_hit contains [i, c.index, v] if {
	input.req.elements.strglob
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.str
	some g in c.string_values.globs
	some v in input.req.context_lists[c.key]
	ec2guard.glob_match(c.string_values.mode, g, v)
}

string_hit contains [i, c.index, v] if {
	input.req.elements.vv
	vo := vars_on
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.str
	some v in input.req.context_lists[c.key]
	some m in c.values_with_variables
	variable_pattern_hit(i in vo, m, v)
}

string_unresolved contains [i, c.index] if {
	input.req.elements.vv
	vo := vars_on
	some i in arp
	vo[i]
	some c in input.ps.statements[i].conditions_by_family.str
	some m in c.values_with_variables
	not tokens_glob(m.tokens)
}

value_true contains [i, c.index, v] if {
	input.req.elements.bin
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.bin
	some v in input.req.context_lists[c.key]
	some m in c.values
	m.text == v
}

value_true contains [i, c.index, v] if {
	input.req.elements.bool
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.bool
	some v in input.req.context_lists[c.key]
	lower(v) in {"true", "false"}
	some m in c.values
	m.text == lower(v)
}

# Numeric and date operators compare numbers ("Numeric condition operators", "Date condition
# operators": epoch seconds, RFC 3339 date-times or plain dates).
value_true contains [i, c.index, v] if {
	input.req.elements.num
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.num
	not negated_operators[c.operator]
	some v in input.req.context_lists[c.key]
	n := to_number(v)
	some m in c.values
	is_number(m.number)
	compare(c.operator, n, m.number)
}

value_true contains [i, c.index, v] if {
	input.req.elements.num
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.num
	negated_operators[c.operator]
	some v in input.req.context_lists[c.key]
	n := to_number(v)
	every m in c.values {
		is_number(m.number)
		n != m.number
	}
}

value_true contains [i, c.index, v] if {
	input.req.elements.date
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.date
	not negated_operators[c.operator]
	some v in input.req.context_lists[c.key]
	n := parse_date(v)
	some m in c.values
	is_number(m.number)
	compare(c.operator, n, m.number)
}

value_true contains [i, c.index, v] if {
	input.req.elements.date
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.date
	negated_operators[c.operator]
	some v in input.req.context_lists[c.key]
	n := parse_date(v)
	every m in c.values {
		is_number(m.number)
		n != m.number
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
value_true contains [i, c.index, v] if {
	input.req.elements.ip
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.ip
	c.operator == "IpAddress"
	some v in input.req.context_lists[c.key]
	some m in c.values
	m.cidr
	net.cidr_contains(m.cidr, v)
}

value_true contains [i, c.index, v] if {
	input.req.elements.ip
	some i in arp
	some c in input.ps.statements[i].conditions_by_family.ip
	c.operator == "NotIpAddress"
	some v in input.req.context_lists[c.key]
	valid_ip(v)
	every m in c.values {
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
# RCPs"); input.req.rcps_apply carries the catalog's answer for the action's service. EC2 is not one of
# them. AWS attaches RCPFullAWSAccess at every level and it cannot be detached, so RCPs only deny.
effective contains i if {
	input.ps.no_rcp
	some i in applies
}

effective contains i if {
	input.ps.has_rcp
	some i in applies
	input.ps.statements[i].kind != "rcp"
}

effective contains i if {
	input.req.rcps_apply
	some i in applies
	input.ps.statements[i].kind == "rcp"
}

# Deny evaluation: an applicable Deny in any policy is final.
explicit_deny if {
	some i in effective
	input.ps.statements[i].effect == "Deny"
}

allowing_kinds contains input.ps.statements[i].kind if {
	some i in effective
	input.ps.statements[i].effect == "Allow"
}

# Resource-based policy allows by principal level.
resource_allow_levels contains rl[i] if {
	input.ps.has_resource
	rl := rlevel
	some i in effective
	input.ps.statements[i].kind == "resource"
	input.ps.statements[i].effect == "Allow"
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
scps_allow if count(input.ps.scp_levels) == 0

scps_allow if {
	count(input.ps.scp_levels) > 0
	sl := scp_level_allows
	every l in input.ps.scp_levels {
		sl[l]
	}
}

scp_level_allows contains input.ps.statements[i].level if {
	some i in effective
	input.ps.statements[i].kind == "scp"
	input.ps.statements[i].effect == "Allow"
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
	input.ps.statements[i].kind == "resource"
	input.ps.statements[i].effect == "Allow"
	rl[i] == "match"
}

resource_bypasses_boundary if {
	input.req.principal.kind == "role"
	some i in effective
	input.ps.statements[i].kind == "resource"
	input.ps.statements[i].effect == "Allow"
	input.ps.statements[i].principal_any
	rl := rlevel
	rl[i] == "match"
}

# ---------------------------------------------------------------------------------------------
# Lints (explanations): what makes statements ineffective for this request.

# An Allow for a wildcard-only action scoped to ARNs never applies (RESOURCE_MISMATCH); neither
# does a Deny (INEFFECTIVE_DENY). act - res: the statements whose Resource element does not cover
# "*", as one set difference rather than a test per statement.
resource_findings := {
	"Allow": {"code": "RESOURCE_MISMATCH"},
	"Deny": {"code": "INEFFECTIVE_DENY", "reason": "resource"},
}

findings contains object.union(resource_findings[input.ps.statements[i].effect], {"i": i}) if {
	input.req.wildcard_only
	some i in act - res
	resource_element(input.ps.statements[i])
}

# A condition on a key the action never carries (input.ps.conditions_by_key lists, per lower-case key, the
# [statement, condition] pairs that use it).
findings contains {"code": "UNSUPPORTED_CONDITION_KEY", "i": i, "key": input.ps.statements[i].conditions[j].key_as_written} if {
	input.req.has_unsupported_keys
	some k in input.req.unsupported_keys
	some [i, j] in input.ps.conditions_by_key[k]
	act[i]
}

# A Deny that can never apply to this action because it is conditioned on a key the action never
# carries (and the condition needs the key); for Denies scoped to ARNs see RESOURCE_MISMATCH above.

findings contains {"code": "INEFFECTIVE_DENY", "i": i, "reason": "condition", "key": c.key_as_written} if {
	input.req.has_unsupported_keys
	some k in input.req.unsupported_keys
	some [i, j] in input.ps.conditions_by_key[k]
	input.ps.statements[i].effect == "Deny"
	act[i]
	c := input.ps.statements[i].conditions[j]
	not true_when_missing(c)
}

true_when_missing(c) if {
	c.operator == "Null"
	some v in c.values
	v.text == "true"
}

true_when_missing(c) if {
	c.operator != "Null"
	c.set_operator == ""
	c.if_exists
}

true_when_missing(c) if {
	c.operator != "Null"
	c.set_operator == ""
	negated_operators[c.operator]
}

true_when_missing(c) if {
	c.operator != "Null"
	c.set_operator == "ForAllValues"
}

# An Allow that matches except for conditions on the region: the policy pins other regions. (f.region:
# some statement the action index offers has a condition on a region key, policycheck.RegionContextKeys.)
findings contains {"code": "REGION_MISMATCH", "i": i, "key": key} if {
	input.req.elements.region
	some [i, key] in region_mismatch
}

region_mismatch contains [i, input.ps.statements[i].conditions[j].key_as_written] if {
	input.req.elements.region
	not allowed
	ap := applies
	ct := cond_true
	some i in arp
	input.ps.statements[i].effect == "Allow"
	input.ps.statements[i].has_region_condition
	not ap[i]
	failing := [j | some j in input.ps.statements[i].condition_indexes; not ct[[i, j]]]
	every j in failing {
		input.ps.statements[i].conditions[j].region_key
	}
	some j in failing
}

# `${...}` in a policy without Version 2012-10-17 is literal text, not a policy variable.
findings contains {"code": "VARIABLE_IN_OLD_VERSION", "i": i} if {
	input.ps.elements.vars
	some i in input.ps.statements_with_variables
	input.ps.statements[i].version != "2012-10-17"
}
