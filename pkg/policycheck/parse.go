package policycheck

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Issue is one problem found in a policy document, located by its JSON path.
type Issue struct {
	// Path in the document, e.g. "Statement[2].Condition.StringLikee".
	Path string
	// Message says what is wrong, quoting the offending value.
	Message string
}

func (i Issue) String() string {
	if i.Path == "" {
		return i.Message
	}
	return i.Path + ": " + i.Message
}

// ParseError lists every problem found in one policy document.
type ParseError struct {
	// Name identifies the document (file name, policy name); may be empty.
	Name   string
	Issues []Issue
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Name != "" {
		fmt.Fprintf(&b, "policy %s: ", e.Name)
	}
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.String())
	}
	return b.String()
}

// ParsePolicy parses an IAM policy document. Every problem is reported with its JSON path; the
// returned error is a *ParseError. name is used only in error messages.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &ParseError{Name: name, Issues: []Issue{{Message: "not valid JSON: " + jsonErrText(err)}}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &ParseError{Name: name, Issues: []Issue{{Message: "not valid JSON: unexpected data after the policy object"}}}
	}
	p, err := ParsePolicyValue(name, doc)
	if err != nil {
		return nil, err
	}
	p.digest = sha256.Sum256(data)
	p.hasDigest = true
	return p, nil
}

// ParsePolicyValue parses a policy document already decoded from JSON (objects as map[string]any;
// numbers as json.Number or float64).
func ParsePolicyValue(name string, doc any) (*Policy, error) {
	p := &parser{}
	pol := p.policy(doc)
	if len(p.issues) > 0 {
		return nil, &ParseError{Name: name, Issues: p.issues}
	}
	return pol, nil
}

func jsonErrText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err.Error()
}

type parser struct {
	issues []Issue
}

func (p *parser) fail(path, format string, args ...any) {
	p.issues = append(p.issues, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
}

// quote renders an offending value for a message, shortened so a huge value cannot flood a log.
func quote(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = fmt.Sprintf("%q", x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprintf("%v", x)
		} else {
			s = string(b)
		}
	}
	const max = 120
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest returns ` (did you mean "X"?)` when name is close to one of the known names.
func suggest(name string, known []string) string {
	best, bestD := "", 4
	for _, k := range known {
		d := levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(k))
		if d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

var policyKeys = []string{"Version", "Id", "Statement"}

func (p *parser) policy(doc any) *Policy {
	obj, ok := doc.(map[string]any)
	if !ok {
		p.fail("", "a policy must be a JSON object, got %s", jsonType(doc))
		return nil
	}
	pol := &Policy{}
	for _, k := range sortedKeys(obj) {
		switch k {
		case "Version":
			v, ok := obj[k].(string)
			switch {
			case !ok:
				p.fail("Version", "must be a string, got %s %s", jsonType(obj[k]), quote(obj[k]))
			case v != Version20121017 && v != Version20081017:
				p.fail("Version", "must be %q or %q, got %s", Version20121017, Version20081017, quote(v))
			default:
				pol.Version = v
			}
		case "Id":
			v, ok := obj[k].(string)
			if !ok {
				p.fail("Id", "must be a string, got %s %s", jsonType(obj[k]), quote(obj[k]))
			}
			pol.ID = v
		case "Statement":
		default:
			p.fail(k, "unknown policy element%s", suggest(k, policyKeys))
		}
	}
	st, present := obj["Statement"]
	switch s := st.(type) {
	case map[string]any:
		pol.Statements = []Statement{p.statement("Statement", s)}
	case []any:
		pol.StatementIsList = true
		for i, item := range s {
			path := fmt.Sprintf("Statement[%d]", i)
			m, ok := item.(map[string]any)
			if !ok {
				p.fail(path, "a statement must be a JSON object, got %s %s", jsonType(item), quote(item))
				continue
			}
			pol.Statements = append(pol.Statements, p.statement(path, m))
		}
	default:
		if !present {
			p.fail("Statement", "is required")
		} else {
			p.fail("Statement", "must be an object or a list of objects, got %s %s", jsonType(st), quote(st))
		}
	}
	return pol
}

var statementKeys = []string{"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
	"Principal", "NotPrincipal", "Condition"}

func (p *parser) statement(path string, obj map[string]any) Statement {
	var s Statement
	for _, k := range sortedKeys(obj) {
		known := false
		for _, sk := range statementKeys {
			if k == sk {
				known = true
			}
		}
		if !known {
			p.fail(path+"."+k, "unknown statement element%s", suggest(k, statementKeys))
		}
	}
	if v, ok := obj["Sid"]; ok {
		sid, ok := v.(string)
		if !ok {
			p.fail(path+".Sid", "must be a string, got %s %s", jsonType(v), quote(v))
		}
		s.Sid = sid
	}
	switch e := obj["Effect"].(type) {
	case string:
		if e != string(Allow) && e != string(Deny) {
			p.fail(path+".Effect", "must be \"Allow\" or \"Deny\" (case-sensitive), got %s", quote(e))
		}
		s.Effect = Effect(e)
	case nil:
		p.fail(path+".Effect", "is required (\"Allow\" or \"Deny\")")
	default:
		p.fail(path+".Effect", "must be \"Allow\" or \"Deny\", got %s %s", jsonType(e), quote(e))
	}

	_, hasA := obj["Action"]
	_, hasNA := obj["NotAction"]
	switch {
	case hasA && hasNA:
		p.fail(path, "has both Action and NotAction; use exactly one")
	case !hasA && !hasNA:
		p.fail(path, "needs Action or NotAction")
	case hasA:
		s.Action = p.actions(path+".Action", obj["Action"])
	default:
		s.NotAction = p.actions(path+".NotAction", obj["NotAction"])
	}

	_, hasR := obj["Resource"]
	_, hasNR := obj["NotResource"]
	switch {
	case hasR && hasNR:
		p.fail(path, "has both Resource and NotResource; use at most one")
	case hasR:
		s.HasResource = true
		s.Resource = p.resources(path+".Resource", obj["Resource"])
	case hasNR:
		s.HasNotResource = true
		s.NotResource = p.resources(path+".NotResource", obj["NotResource"])
	}

	_, hasP := obj["Principal"]
	_, hasNP := obj["NotPrincipal"]
	switch {
	case hasP && hasNP:
		p.fail(path, "has both Principal and NotPrincipal; use at most one")
	case hasP:
		s.Principal = p.principal(path+".Principal", obj["Principal"])
	case hasNP:
		s.NotPrincipal = p.principal(path+".NotPrincipal", obj["NotPrincipal"])
	}

	if c, ok := obj["Condition"]; ok {
		s.Conditions = p.conditions(path+".Condition", c)
	}
	return s
}

// stringList accepts a string or a list of strings.
func (p *parser) stringList(path string, v any) ([]string, bool) {
	switch x := v.(type) {
	case string:
		return []string{x}, true
	case []any:
		out := make([]string, 0, len(x))
		ok := true
		for i, item := range x {
			s, isStr := item.(string)
			if !isStr {
				p.fail(fmt.Sprintf("%s[%d]", path, i), "must be a string, got %s %s", jsonType(item), quote(item))
				ok = false
				continue
			}
			out = append(out, s)
		}
		return out, ok
	default:
		p.fail(path, "must be a string or a list of strings, got %s %s", jsonType(v), quote(v))
		return nil, false
	}
}

var servicePrefixRE = regexp.MustCompile(`^[a-zA-Z0-9-]+$`)

func (p *parser) actions(path string, v any) []string {
	list, _ := p.stringList(path, v)
	if isList(v) && len(list) == 0 {
		p.fail(path, "must not be empty")
	}
	for i, a := range list {
		ip := indexPath(path, v, i)
		if a == "*" {
			continue
		}
		svc, act, ok := strings.Cut(a, ":")
		switch {
		case !ok || strings.Contains(act, ":"):
			p.fail(ip, "an action must be \"*\" or \"service:Action\", got %s", quote(a))
		case !servicePrefixRE.MatchString(svc):
			p.fail(ip, "service prefix must be letters, digits and hyphens, got %s", quote(a))
		case act == "":
			p.fail(ip, "action name is empty in %s", quote(a))
		}
	}
	return list
}

func (p *parser) resources(path string, v any) []string {
	list, _ := p.stringList(path, v)
	if isList(v) && len(list) == 0 {
		p.fail(path, "must not be empty")
	}
	for i, r := range list {
		if r == "*" || strings.HasPrefix(r, "arn:") {
			continue
		}
		p.fail(indexPath(path, v, i), "a resource must be \"*\" or an ARN (arn:partition:service:region:account:resource), got %s", quote(r))
	}
	return list
}

func isList(v any) bool { _, ok := v.([]any); return ok }

func indexPath(path string, v any, i int) string {
	if isList(v) {
		return fmt.Sprintf("%s[%d]", path, i)
	}
	return path
}

var principalKeys = []string{"AWS", "Service", "Federated", "CanonicalUser"}

func (p *parser) principal(path string, v any) *Principal {
	switch x := v.(type) {
	case string:
		if x != "*" {
			p.fail(path, "a principal string must be \"*\"; name principals as {\"AWS\": %s}", quote(x))
		}
		return &Principal{Any: true}
	case map[string]any:
		pr := &Principal{}
		for _, k := range sortedKeys(x) {
			vals, _ := p.stringList(path+"."+k, x[k])
			switch k {
			case "AWS":
				pr.AWS = vals
			case "Service":
				pr.Service = vals
			case "Federated":
				pr.Federated = vals
			case "CanonicalUser":
				pr.CanonicalUser = vals
			default:
				p.fail(path+"."+k, "unknown principal type%s", suggest(k, principalKeys))
			}
		}
		return pr
	default:
		p.fail(path, "must be \"*\" or an object like {\"AWS\": ...}, got %s %s", jsonType(v), quote(v))
		return nil
	}
}

func (p *parser) conditions(path string, v any) []Condition {
	obj, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "must be an object of operator -> key -> value(s), got %s %s", jsonType(v), quote(v))
		return nil
	}
	var out []Condition
	for _, op := range sortedKeys(obj) {
		opPath := path + "." + op
		base, set, ifExists, err := parseOperator(op)
		if err != "" {
			p.fail(opPath, "%s", err)
			continue
		}
		keys, ok := obj[op].(map[string]any)
		if !ok {
			p.fail(opPath, "must be an object of condition key -> value(s), got %s %s", jsonType(obj[op]), quote(obj[op]))
			continue
		}
		if len(keys) == 0 {
			p.fail(opPath, "has no condition keys")
		}
		for _, key := range sortedKeys(keys) {
			keyPath := opPath + "." + key
			if strings.TrimSpace(key) == "" {
				p.fail(keyPath, "condition key is empty")
				continue
			}
			vals := p.conditionValues(keyPath, keys[key])
			out = append(out, Condition{Operator: op, Base: base, Set: set, IfExists: ifExists, Key: key, Values: vals})
		}
	}
	return out
}

// parseOperator splits "ForAnyValue:StringLikeIfExists" into its parts; err is a message for an
// unknown operator.
func parseOperator(op string) (base string, set SetOperator, ifExists bool, err string) {
	rest := op
	if pre, after, ok := strings.Cut(op, ":"); ok {
		switch strings.ToLower(pre) {
		case "foranyvalue":
			set = SetForAnyValue
		case "forallvalues":
			set = SetForAllValues
		default:
			return "", "", false, fmt.Sprintf("unknown set operator %s; use ForAnyValue: or ForAllValues:", quote(pre))
		}
		rest = after
	}
	name := rest
	if len(name) > len("IfExists") && strings.EqualFold(name[len(name)-len("IfExists"):], "IfExists") {
		name = name[:len(name)-len("IfExists")]
		ifExists = true
	}
	for _, b := range baseOperators {
		if strings.EqualFold(b, name) {
			if b == "Null" && ifExists {
				return "", "", false, "Null cannot be combined with IfExists"
			}
			return b, set, ifExists, ""
		}
	}
	return "", "", false, fmt.Sprintf("unknown operator %s%s", quote(op), suggest(rest, baseOperators))
}

func (p *parser) conditionValues(path string, v any) []string {
	one := func(ip string, item any) (string, bool) {
		switch x := item.(type) {
		case string:
			return x, true
		case bool:
			if x {
				return "true", true
			}
			return "false", true
		case json.Number:
			return x.String(), true
		case float64:
			return fmt.Sprintf("%v", x), true
		default:
			p.fail(ip, "a condition value must be a string, number or boolean, got %s %s", jsonType(item), quote(item))
			return "", false
		}
	}
	if list, ok := v.([]any); ok {
		if len(list) == 0 {
			p.fail(path, "needs at least one value")
			return nil
		}
		out := make([]string, 0, len(list))
		for i, item := range list {
			if s, ok := one(fmt.Sprintf("%s[%d]", path, i), item); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := one(path, v); ok {
		return []string{s}
	}
	return nil
}

// isRCPFullAccess reports whether s is the statement of AWS's managed RCPFullAWSAccess
// (Organizations User Guide, "RCP syntax": "The effect of Allow is only supported for the
// RCPFullAWSAccess policy", attached to the root, every OU and every account, and it cannot be
// detached): Allow, Principal "*", Action "*", Resource "*", nothing else. It lets every request
// pass RCP evaluation and grants nothing, which is how the engine reads RCPs anyway (only their
// Denies count), so it is accepted as AWS lists it and changes no decision.
func isRCPFullAccess(s Statement) bool {
	return s.Effect == Allow && s.Principal != nil && s.Principal.Any && s.NotPrincipal == nil &&
		len(s.Action) == 1 && s.Action[0] == "*" && len(s.NotAction) == 0 &&
		s.HasResource && len(s.Resource) == 1 && s.Resource[0] == "*" && !s.HasNotResource &&
		len(s.Conditions) == 0
}

// PolicyKind is the role a policy plays in an evaluation; it decides which elements are allowed.
type PolicyKind string

// Policy kinds.
const (
	KindIdentity PolicyKind = "identity"
	KindBoundary PolicyKind = "permissionsBoundary"
	KindSCP      PolicyKind = "scp"
	KindRCP      PolicyKind = "rcp"
	KindResource PolicyKind = "resource"
	KindSession  PolicyKind = "session"
	KindTrust    PolicyKind = "trust"
)

// Validate checks the elements that depend on where the policy is used (e.g. Principal is required
// in a resource policy and not allowed in an identity policy). It returns a *ParseError or nil.
func (p *Policy) Validate(name string, kind PolicyKind) error {
	var issues []Issue
	add := func(i int, format string, args ...any) {
		path := "Statement"
		if p.StatementIsList {
			path = fmt.Sprintf("Statement[%d]", i)
		}
		issues = append(issues, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	for i, s := range p.Statements {
		hasPrincipal := s.Principal != nil || s.NotPrincipal != nil
		hasResource := s.HasResource || s.HasNotResource
		switch kind {
		case KindIdentity, KindBoundary, KindSession, KindSCP:
			if hasPrincipal {
				add(i, "Principal/NotPrincipal is not allowed in %s policies", kind)
			}
			if !hasResource {
				add(i, "needs Resource or NotResource in %s policies", kind)
			}
		case KindRCP:
			if s.Effect != Deny && !isRCPFullAccess(s) {
				add(i, "an RCP statement must have Effect \"Deny\": the only Allow an RCP may hold is AWS's RCPFullAWSAccess statement (Principal \"*\", Action \"*\", Resource \"*\", no Condition)")
			}
			if s.Principal == nil || !s.Principal.Any {
				add(i, "an RCP statement must have Principal \"*\"")
			}
			if len(s.NotAction) > 0 {
				add(i, "NotAction is not allowed in an RCP")
			}
			if !hasResource {
				add(i, "needs Resource or NotResource in an RCP")
			}
		case KindResource, KindTrust:
			if !hasPrincipal {
				add(i, "a %s policy statement needs Principal or NotPrincipal", kind)
			}
		}
	}
	if kind == KindRCP && p.Version != Version20121017 {
		issues = append(issues, Issue{Path: "Version", Message: "an RCP must use Version \"2012-10-17\""})
	}
	if len(issues) > 0 {
		return &ParseError{Name: name, Issues: issues}
	}
	return nil
}
