package policycheck

import (
	"fmt"
	"strings"
)

// Finding codes.
const (
	// CodeResourceMismatch: an Allow for a wildcard-only action is scoped to resource ARNs.
	CodeResourceMismatch = "RESOURCE_MISMATCH"
	// CodeUnsupportedConditionKey: a statement conditions on a key the action never carries.
	CodeUnsupportedConditionKey = "UNSUPPORTED_CONDITION_KEY"
	// CodeIneffectiveDeny: a Deny that can never apply to the action.
	CodeIneffectiveDeny = "INEFFECTIVE_DENY"
	// CodeRegionMismatch: an Allow that would apply but for its region condition.
	CodeRegionMismatch = "REGION_MISMATCH"
	// CodeVariableInOldVersion: `${...}` in a policy without Version 2012-10-17 is literal text.
	CodeVariableInOldVersion = "VARIABLE_IN_OLD_VERSION"
)

// Finding explains why a statement does not do what it seems to, with a proposed fix.
type Finding struct {
	Code string `json:"code"`
	// Statement is the statement concerned.
	Statement *StatementRef `json:"statement,omitempty"`
	// Key is the condition key concerned, if any.
	Key string `json:"key,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Fix proposes a change.
	Fix string `json:"fix"`

	order int // statement index in the policy set, for sorting
}

// canonicalAction renders the action as the caller wrote it in canonical case where known.
func actionLabel(p *preparedRequest) string {
	if a, ok := p.meta.(interface{ String() string }); ok {
		return a.String()
	}
	return p.action
}

func isEC2Tagkey(key string) bool {
	k := strings.ToLower(key)
	return strings.HasPrefix(k, "ec2:resourcetag/") || strings.HasPrefix(k, "aws:resourcetag/")
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// requestRegion returns the region the request is for, from its context.
func requestRegion(p *preparedRequest) string {
	for _, k := range RegionContextKeys() {
		if v, ok := p.ctx[strings.ToLower(k)].(string); ok {
			return v
		}
	}
	return ""
}

func buildFindings(ps *PolicySet, p *preparedRequest, raw []regoFinding, result string) []Finding {
	action := actionLabel(p)
	out := make([]Finding, 0, len(raw))
	for _, rf := range raw {
		if rf.I < 0 || rf.I >= len(ps.refs) {
			continue
		}
		s, ref := ps.statement(rf.I)
		f := Finding{Code: rf.Code, Statement: &ref, Key: rf.Key, order: rf.I}
		switch rf.Code {
		case CodeResourceMismatch:
			f.Message = fmt.Sprintf("%s allows %s only on %s, but %s supports no resource-level permissions: AWS authorizes it against Resource \"*\", so this statement never grants it",
				ref, action, quoteList(s.Resource), action)
			f.Fix = fmt.Sprintf("set \"Resource\": \"*\" for %s and limit it with conditions the action supports", action)
			if p.service == "ec2" {
				f.Fix = fmt.Sprintf("set \"Resource\": \"*\" for %s, pin the region with a condition on aws:RequestedRegion (or ec2:Region), and keep tag scoping in the Upstream's filters", action)
			}
		case CodeUnsupportedConditionKey:
			f.Message = fmt.Sprintf("%s has a condition on %s, which %s requests never carry, so AWS evaluates it as if the key were missing", ref, rf.Key, action)
			if s.Effect == Allow {
				f.Message += " (for an Allow with a positive operator: the statement never applies)"
			}
			f.Fix = fmt.Sprintf("remove the condition on %s; use keys %s supports (e.g. aws:RequestedRegion)", rf.Key, action)
			if isEC2Tagkey(rf.Key) && p.service == "ec2" {
				f.Fix = fmt.Sprintf("remove the condition on %s: %s cannot be restricted by tag in IAM; keep tag scoping in the Upstream's filters", rf.Key, action)
			}
		case CodeIneffectiveDeny:
			if rf.Reason == "resource" {
				f.Message = fmt.Sprintf("Deny %s never applies to %s: it is scoped to %s, but %s is authorized against Resource \"*\"", ref, action, quoteList(s.Resource), action)
				f.Fix = fmt.Sprintf("use \"Resource\": \"*\" in the Deny and narrow it with conditions %s supports", action)
			} else {
				f.Message = fmt.Sprintf("Deny %s never applies to %s: its condition on %s needs a key the request never carries", ref, action, rf.Key)
				f.Fix = fmt.Sprintf("condition the Deny on keys %s supports (e.g. aws:RequestedRegion)", action)
			}
		case CodeRegionMismatch:
			region := requestRegion(p)
			vals := conditionValuesFor(s, rf.Key)
			f.Message = fmt.Sprintf("%s allows %s only where %s is %s; the request is for region %q", ref, action, rf.Key, quoteList(vals), region)
			f.Fix = fmt.Sprintf("add %q to the %s condition of that statement, or use a region the policy allows", region, rf.Key)
		case CodeVariableInOldVersion:
			v := "none"
			if pol := policyVersionOf(ps, rf.I); pol != "" {
				v = fmt.Sprintf("%q", pol)
			}
			f.Message = fmt.Sprintf("%s uses ${...}, but its policy's Version is %s, so the text is literal, not a policy variable", ref, v)
			f.Fix = "add \"Version\": \"2012-10-17\" to the policy"
		default:
			f.Message = fmt.Sprintf("%s: %s", rf.Code, ref)
		}
		out = append(out, f)
	}
	sortFindings(out)
	return out
}

func conditionValuesFor(s *Statement, key string) []string {
	var vals []string
	for _, c := range s.Conditions {
		if strings.EqualFold(c.Key, key) {
			vals = append(vals, c.Values...)
		}
	}
	return vals
}

func policyVersionOf(ps *PolicySet, i int) string {
	if i < 0 || i >= len(ps.versions) {
		return ""
	}
	return ps.versions[i]
}

// Summary explains the decision in one paragraph: the result, the statements behind it, and what
// to fix when the request is denied.
func (d Decision) Summary() string {
	var b strings.Builder
	switch d.Result {
	case Allowed:
		var allows []string
		for _, r := range d.MatchedStatements {
			if r.Effect == Allow {
				allows = append(allows, r.String())
			}
		}
		fmt.Fprintf(&b, "allowed: %s on %q", d.Action, d.Resource)
		if len(allows) > 0 {
			fmt.Fprintf(&b, " by %s", strings.Join(allows, "; "))
		}
	case ExplicitDeny:
		var denies []string
		for _, r := range d.MatchedStatements {
			if r.Effect == Deny {
				denies = append(denies, r.String())
			}
		}
		fmt.Fprintf(&b, "explicit deny: %s on %q is denied by %s", d.Action, d.Resource, strings.Join(denies, "; "))
	default:
		fmt.Fprintf(&b, "implicit deny: no statement allows %s on %q", d.Action, d.Resource)
	}
	if d.Result != Allowed {
		for _, f := range d.Findings {
			fmt.Fprintf(&b, ". %s. Fix: %s", f.Message, f.Fix)
		}
	}
	return b.String()
}
