package policycheck

import (
	"fmt"
	"strings"
)

// Size bounds. A principal's policies are bounded by IAM's own quotas (IAM User Guide, "IAM and
// AWS STS quotas, name requirements, and character limits"; AWS Organizations User Guide, "Quotas
// for AWS Organizations"); docs/iam-semantics.md lists them with their sources. IAM counts
// characters without white space; policycheck counts the characters of the strings a parsed
// policy holds (Sid, Version, actions, resources, principals, condition keys and values), which is
// never more than IAM's count, so every policy set AWS accepts passes.
const (
	// managedPolicyChars: a managed policy (and a permissions boundary) has at most 6,144 characters.
	managedPolicyChars = 6144
	// userInlineChars, groupInlineChars, roleInlineChars: the aggregate of an entity's inline
	// policies.
	userInlineChars  = 2048
	groupInlineChars = 5120
	roleInlineChars  = 10240
	// managedPerEntityMax: managed policies attached to a user or role (default 10, at most 20);
	// managedPerGroup: to a group (10).
	managedPerEntityMax = 20
	managedPerGroup     = 10
	// groupsPerUser: groups an IAM user belongs to.
	groupsPerUser = 10
	// trustPolicyCharsMax: a role trust policy (default 2,048, at most 8,192); bucketPolicyBytes:
	// an S3 bucket policy (20 KB), the largest resource-based policy ec2guard is asked about.
	trustPolicyCharsMax = 8192
	bucketPolicyBytes   = 20 * 1024
	// orgPolicyChars: an SCP or RCP (5,120 characters); orgPoliciesPerTarget: SCPs or RCPs attached
	// to the root, an OU or an account (5); orgLevels: root, five levels of OUs, the account.
	orgPolicyChars       = 5120
	orgPoliciesPerTarget = 5
	orgLevels            = 7
	// sessionPolicyChars: the plain-text session policy passed to AssumeRole.
	sessionPolicyChars = 2048
)

// MaxPolicySetChars bounds the characters of one principal's policy set: the largest IAM allows,
// an IAM user with 20 managed policies and 2,048 characters inline, in 10 groups with 10 managed
// policies and 5,120 characters inline each (a role has less), plus a permissions boundary, SCPs
// and RCPs at every organization level, a resource-based policy and a session policy.
const MaxPolicySetChars = managedPerEntityMax*managedPolicyChars + userInlineChars +
	groupsPerUser*(managedPerGroup*managedPolicyChars+groupInlineChars) +
	managedPolicyChars +
	2*orgLevels*orgPoliciesPerTarget*orgPolicyChars +
	bucketPolicyBytes + sessionPolicyChars

// MaxSubstitutedPatternChars bounds one pattern (Resource, NotResource or condition value) once
// its policy variables are substituted with the request's values. A 6,144-character managed policy
// whose one value repeats ${aws:PrincipalArn} for a role with the longest path and name (about 600
// characters) expands to about 190,000 characters; patterns are matched by glob.go without
// regular expressions, so the bound keeps the cost of one match (quadratic at worst) in check.
const MaxSubstitutedPatternChars = 256 * 1024

// Limit codes (see LimitError).
const (
	// CodePolicySetTooLarge: the policy set has more characters than IAM's quotas allow a principal.
	CodePolicySetTooLarge = "POLICY_SET_TOO_LARGE"
	// CodePatternTooLong: a pattern with policy variables is longer than
	// MaxSubstitutedPatternChars once the request's values are substituted.
	CodePatternTooLong = "PATTERN_TOO_LONG"
)

// LimitError says that a policy set or a request exceeds a size bound; the engine refuses to
// decide rather than spend unbounded memory or time. Callers report it as an unknown decision.
type LimitError struct {
	// Code is CodePolicySetTooLarge or CodePatternTooLong.
	Code string `json:"code"`
	// Message says what is too large, the size and the bound; it names policies and statements
	// but quotes no values.
	Message string `json:"message"`
}

func (e *LimitError) Error() string { return e.Code + ": " + e.Message }

// policyChars counts the characters of the strings a policy holds (see the size bounds above).
func policyChars(p *Policy) int {
	n := len(p.Version) + len(p.ID)
	list := func(l []string) {
		for _, s := range l {
			n += len(s)
		}
	}
	for i := range p.Statements {
		s := &p.Statements[i]
		n += len(s.Sid) + len(s.Effect)
		list(s.Action)
		list(s.NotAction)
		list(s.Resource)
		list(s.NotResource)
		for _, pr := range []*Principal{s.Principal, s.NotPrincipal} {
			if pr == nil {
				continue
			}
			if pr.Any {
				n++
			}
			list(pr.AWS)
			list(pr.Service)
			list(pr.Federated)
			list(pr.CanonicalUser)
		}
		for _, c := range s.Conditions {
			n += len(c.Operator) + len(c.Key)
			list(c.Values)
		}
	}
	return n
}

// variablePattern is a pattern with policy variables, for the substituted-length check.
type variablePattern struct {
	ref     int // statement index
	element string
	literal int // characters that are not variables
	vars    []token
}

// variablePatterns lists the patterns of a statement whose variables the Rego substitutes (under
// Version 2012-10-17: Resource, NotResource and string/ARN condition values).
func variablePatterns(idx int, version string, s *Statement) []variablePattern {
	if version != Version20121017 {
		return nil
	}
	var out []variablePattern
	add := func(element string, list []string) {
		for _, v := range list {
			if !hasVariableSyntax(v) {
				continue
			}
			vp := variablePattern{ref: idx, element: element}
			for _, t := range tokenize(v, true, false) {
				if t.kind == "v" {
					vp.vars = append(vp.vars, t)
				} else {
					vp.literal += len(t.text)
				}
			}
			out = append(out, vp)
		}
	}
	add("Resource", s.Resource)
	add("NotResource", s.NotResource)
	for _, c := range s.Conditions {
		if operatorFamily(c.Base) == "str" {
			add("Condition."+c.Operator+"."+c.Key, c.Values)
		}
	}
	return out
}

// checkSubstitutedLengths refuses a request for which a pattern of the set would exceed
// MaxSubstitutedPatternChars once substituted (the Rego's variable_value: the request's single
// value for the key, else the default).
func (ps *PolicySet) checkSubstitutedLengths(p *preparedRequest) error {
	for _, vp := range ps.varPatterns {
		n := vp.literal
		for _, t := range vp.vars {
			if v, ok := p.ctx[t.text].(string); ok && v != "" {
				n += len(v)
			} else if t.def != nil {
				n += len(*t.def)
			}
		}
		if n > MaxSubstitutedPatternChars {
			return &LimitError{Code: CodePatternTooLong, Message: fmt.Sprintf(
				"%s: a %s pattern has %d characters once its policy variables are substituted for this request, more than the %d ec2guard evaluates; use fewer variables in one pattern",
				ps.refs[vp.ref], vp.element, n, MaxSubstitutedPatternChars)}
		}
	}
	return nil
}

// checkPolicySetSize refuses a policy set larger than IAM's quotas allow one principal.
func checkPolicySetSize(in PolicySetInput) error {
	total := 0
	largest, largestName := 0, ""
	add := func(np NamedPolicy) {
		if np.Policy == nil {
			return
		}
		n := policyChars(np.Policy)
		total += n
		if n > largest {
			largest, largestName = n, np.Name
		}
	}
	for _, p := range in.Identity {
		add(p)
	}
	for _, p := range []*NamedPolicy{in.Boundary, in.Resource, in.Session} {
		if p != nil {
			add(*p)
		}
	}
	for _, levels := range [][][]NamedPolicy{in.SCPs, in.RCPs} {
		for _, level := range levels {
			for _, p := range level {
				add(p)
			}
		}
	}
	if total <= MaxPolicySetChars {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the policies bearing on this principal hold %d characters, more than IAM's quotas allow one principal (%d)", total, MaxPolicySetChars)
	if largestName != "" {
		fmt.Fprintf(&b, "; the largest is %q with %d", largestName, largest)
	}
	return &LimitError{Code: CodePolicySetTooLarge, Message: b.String()}
}
