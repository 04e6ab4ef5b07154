package policycheck

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// NamedPolicy is a parsed policy and the name explanations use for it (file name, policy name or
// its place in a simulation case such as "identityPolicies[0]").
type NamedPolicy struct {
	Name   string
	Policy *Policy
}

// PolicySetInput lists every policy that bears on a principal's requests.
type PolicySetInput struct {
	// Identity policies of the principal (inline, attached, and its groups').
	Identity []NamedPolicy
	// Boundary is the permissions boundary, if any.
	Boundary *NamedPolicy
	// SCPs are the service control policies by organization level, root first; empty means the
	// account is not in an organization. Every level must allow.
	SCPs [][]NamedPolicy
	// RCPs are the resource control policies by level, root first. AWS's RCPFullAWSAccess is
	// implicitly attached at every level, so RCPs can only deny.
	RCPs [][]NamedPolicy
	// Resource is the resource-based policy of the resource (bucket policy, role trust policy...).
	Resource *NamedPolicy
	// Session is the session policy passed when the role session was created.
	Session *NamedPolicy
}

// StatementRef identifies a statement in explanations.
type StatementRef struct {
	// Kind is the policy type: identity, permissionsBoundary, scp, rcp, resource, session.
	Kind PolicyKind `json:"kind"`
	// Level is the organization level for SCPs and RCPs (0 = root).
	Level int `json:"level,omitempty"`
	// Policy is the policy's name.
	Policy string `json:"policy"`
	// Sid is the statement's Sid, if it has one.
	Sid string `json:"sid,omitempty"`
	// Index is the statement's position in its policy (0-based).
	Index int `json:"index"`
	// Effect of the statement.
	Effect Effect `json:"effect"`
}

// String renders the reference for messages: `statement "Sid" (#0) of policy P`.
func (r StatementRef) String() string {
	if r.Sid != "" {
		return fmt.Sprintf("statement %q (#%d) of %s policy %q", r.Sid, r.Index, r.Kind, r.Policy)
	}
	return fmt.Sprintf("statement #%d of %s policy %q", r.Index, r.Kind, r.Policy)
}

// PolicySet is a compiled PolicySetInput: immutable and safe for concurrent use. Build it once per
// principal and evaluate many requests against it.
type PolicySet struct {
	hash        string
	doc         ast.Value
	refs        []StatementRef
	stmts       []*Statement
	versions    []string   // Version of each statement's policy as written
	stKeys      [][]string // each statement's lower-case condition keys
	hasBoundary bool
	// The action index (see setBuilder.index) and each statement's flags, for actionView.
	ax, aws map[string][]int
	awa     []int
	stFlags []map[string]bool
	// stActKinds lists the kinds of Action patterns each statement has (see actionView).
	stActKinds [][]string
	// actionViews caches, per lower-case action, what the Rego's input says about the set for that
	// action (*actionView: element flags, wildcard-pattern lists, condition keys the action never
	// carries). The set's only cache; the engine's is its decision cache.
	actionViews sync.Map
	// varPatterns are the patterns with policy variables, for checkSubstitutedLengths.
	varPatterns []variablePattern
}

// Hash identifies the policy set's content (names included).
func (ps *PolicySet) Hash() string { return ps.hash }

// Statement returns the statement a StatementRef index points at.
func (ps *PolicySet) statement(i int) (*Statement, StatementRef) { return ps.stmts[i], ps.refs[i] }

// NewPolicySet validates each policy for the role it plays and compiles the set.
func NewPolicySet(in PolicySetInput) (*PolicySet, error) {
	if err := checkPolicySetSize(in); err != nil {
		return nil, err
	}
	b := &setBuilder{doc: regoPolicySet{
		StatementsByAction:          map[string][]int{},
		WildcardStatementsByService: map[string][]int{},
		StatementsForAnyAction:      []int{},
		SCPLevels:                   []int{},
		StatementsWithVariables:     []int{},
		Elements:                    map[string]bool{},
		ConditionsByKey:             map[string][][2]int{},
	}}
	var errs []error
	add := func(kind PolicyKind, level int, np NamedPolicy) {
		if np.Policy == nil {
			errs = append(errs, fmt.Errorf("%s policy %q: no document", kind, np.Name))
			return
		}
		if err := np.Policy.Validate(np.Name, kind); err != nil {
			errs = append(errs, err)
			return
		}
		b.addPolicy(kind, level, np)
	}
	for _, p := range in.Identity {
		add(KindIdentity, 0, p)
	}
	if in.Boundary != nil {
		add(KindBoundary, 0, *in.Boundary)
	}
	if in.Session != nil {
		add(KindSession, 0, *in.Session)
	}
	if in.Resource != nil {
		add(KindResource, 0, *in.Resource)
	}
	for l, level := range in.SCPs {
		b.doc.SCPLevels = append(b.doc.SCPLevels, l)
		for _, p := range level {
			add(KindSCP, l, p)
		}
	}
	for l, level := range in.RCPs {
		for _, p := range level {
			add(KindRCP, l, p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	layered := in.Boundary != nil || in.Session != nil || len(in.SCPs) > 0
	hasRCP := false
	for _, level := range in.RCPs {
		hasRCP = hasRCP || len(level) > 0
	}
	d := &b.doc
	d.HasBoundary, d.HasSession = in.Boundary != nil, in.Session != nil
	d.HasResource, d.NoResource = in.Resource != nil, in.Resource == nil
	d.HasRCP, d.NoRCP = hasRCP, !hasRCP
	d.Plain, d.Layered = !layered, layered
	val, err := toRegoValue(d)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(b.digest.String()))
	return &PolicySet{
		hash:        hex.EncodeToString(sum[:]),
		ax:          d.StatementsByAction,
		aws:         d.WildcardStatementsByService,
		awa:         d.StatementsForAnyAction,
		stFlags:     b.stFlags,
		stActKinds:  b.stActKinds,
		doc:         val,
		refs:        b.refs,
		stmts:       b.raw,
		versions:    b.versions,
		stKeys:      b.stKeys,
		hasBoundary: in.Boundary != nil,
		varPatterns: b.varPatterns,
	}, nil
}

type setBuilder struct {
	// digest identifies the set's content: each policy's kind, level, name and document digest.
	digest   strings.Builder
	doc      regoPolicySet
	refs     []StatementRef
	raw      []*Statement
	versions []string
	cur      int // index of the statement being built
	// stFlags are the elements of each statement (see PolicySet.actionView); doc.Elements the union.
	stFlags []map[string]bool
	stKeys  [][]string // each statement's lower-case condition keys
	// stActKinds lists the kinds of Action patterns of each statement (see actionView).
	stActKinds [][]string
	// varPatterns are the patterns with policy variables (see variablePatterns).
	varPatterns []variablePattern
}

// flag records that the statement being built has an element (see regoPolicySet.Elements).
func (b *setBuilder) flag(name string) {
	b.doc.Elements[name] = true
	b.stFlags[b.cur][name] = true
}

func (b *setBuilder) addPolicy(kind PolicyKind, level int, np NamedPolicy) {
	fmt.Fprintf(&b.digest, "%s\x00%d\x00%q\x00%x\n", kind, level, np.Name, np.Policy.Digest())
	for i := range np.Policy.Statements {
		s := &np.Policy.Statements[i]
		idx := len(b.doc.Statements)
		b.cur = idx
		b.stFlags = append(b.stFlags, map[string]bool{})
		b.stKeys = append(b.stKeys, nil)
		b.stActKinds = append(b.stActKinds, nil)
		stmt := b.statement(kind, level, np, i, s)
		if stmt.HasVariables {
			b.doc.StatementsWithVariables = append(b.doc.StatementsWithVariables, idx)
		}
		b.doc.Statements = append(b.doc.Statements, stmt)
		b.refs = append(b.refs, StatementRef{Kind: kind, Level: level, Policy: np.Name, Sid: s.Sid, Index: i, Effect: s.Effect})
		b.raw = append(b.raw, s)
		b.versions = append(b.versions, np.Policy.Version)
		b.varPatterns = append(b.varPatterns, variablePatterns(idx, np.Policy.Version, s)...)
		b.index(idx, s)
	}
}

// index files a statement under the action index the Rego starts from: statements_by_action for
// statements that name only exact actions (by action), wildcard_statements_by_service for wildcard
// patterns within one service (by service), statements_for_any_action for the rest ("*",
// wildcards in the service prefix, NotAction). Together they are a superset of the statements
// whose Action element can match a request's action; the Rego then checks the patterns exactly.
func (b *setBuilder) index(idx int, s *Statement) {
	d := &b.doc
	if len(s.NotAction) > 0 {
		d.StatementsForAnyAction = append(d.StatementsForAnyAction, idx)
		return
	}
	exact := true
	services := map[string]bool{}
	for _, a := range s.Action {
		svc, _, _ := strings.Cut(strings.ToLower(a), ":")
		if a == "*" || strings.ContainsAny(svc, "*?") {
			d.StatementsForAnyAction = append(d.StatementsForAnyAction, idx)
			return
		}
		if strings.ContainsAny(a, "*?") {
			exact = false
		}
		services[svc] = true
	}
	if !exact {
		for _, svc := range sortedSet(services) {
			d.WildcardStatementsByService[svc] = append(d.WildcardStatementsByService[svc], idx)
		}
		return
	}
	seen := map[string]bool{}
	for _, a := range s.Action {
		la := strings.ToLower(a)
		if !seen[la] {
			seen[la] = true
			d.StatementsByAction[la] = append(d.StatementsByAction[la], idx)
		}
	}
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var (
	actionOpts   = patternOpts{mode: modeFlat, lower: true, anyStar: true}
	resourceOpts = patternOpts{mode: modeSegmented, anyStar: true}
)

// groupMatchers indexes the literal readings of matchers for the Rego's hot paths. Matchers with a
// variable reading are not included.
func groupMatchers(ms []regoMatcher) *regoMatcherGroup {
	g := &regoMatcherGroup{Exact: map[string]bool{}, Prefixes: []string{}, Globs: []string{}}
	for _, m := range ms {
		switch {
		case m.Tokens != nil:
		case m.Any:
			g.Any = true
		case m.Exact != nil:
			g.Exact[*m.Exact] = true
		case m.Prefix != nil:
			g.Prefixes = append(g.Prefixes, *m.Prefix)
		case m.Glob != nil:
			g.Globs = append(g.Globs, *m.Glob)
			g.Mode = m.Mode
		}
	}
	return g
}

// groupKinds lists which parts of a group are not empty, by the names of the per-action
// wildcard-statement lists (actionView).
func groupKinds(g *regoMatcherGroup) []string {
	var kinds []string
	if len(g.Exact) > 0 {
		kinds = append(kinds, "exact")
	}
	if g.Any {
		kinds = append(kinds, "any")
	}
	if len(g.Prefixes) > 0 {
		kinds = append(kinds, "prefixes")
	}
	if len(g.Globs) > 0 {
		kinds = append(kinds, "globs")
	}
	return kinds
}

func matchers(list []string, o patternOpts) []regoMatcher {
	out := make([]regoMatcher, 0, len(list))
	for _, s := range list {
		out = append(out, compileMatcher(s, o))
	}
	return out
}

func (b *setBuilder) statement(kind PolicyKind, level int, np NamedPolicy, i int, s *Statement) regoStatement {
	version := np.Policy.Version
	if version == "" {
		version = Version20081017
	}
	kindName := string(kind)
	if kind == KindBoundary {
		kindName = "boundary"
	}
	st := regoStatement{Kind: kindName, Level: level, Index: i, Effect: string(s.Effect), Version: version}
	hv := false
	note := func(list []string) {
		for _, x := range list {
			if hasVariableSyntax(x) {
				hv = true
			}
		}
	}
	if len(s.NotAction) > 0 {
		b.flag("na")
		st.NotActions = matchers(s.NotAction, actionOpts)
		b.stActKinds[b.cur] = []string{"not_actions"}
	} else {
		st.Actions = groupMatchers(matchers(s.Action, actionOpts))
		b.stActKinds[b.cur] = groupKinds(st.Actions)
	}
	switch {
	case s.HasResource:
		plain, vars := splitMatchers(s.Resource, resourceOpts)
		if len(plain) > 0 {
			st.Resources = groupMatchers(plain)
		}
		st.ResourcesWithVariables = vars
		note(s.Resource)
	case s.HasNotResource:
		b.flag("nr")
		st.NotResources, st.NotResourcesWithVariables = splitMatchers(s.NotResource, resourceOpts)
		note(s.NotResource)
	default:
		b.flag("noresource")
	}
	if len(st.ResourcesWithVariables) > 0 || len(st.NotResourcesWithVariables) > 0 {
		b.flag("rv")
	}
	if s.Principal != nil {
		st.Principals, st.PrincipalAny = principalEntries(s.Principal)
	} else if s.NotPrincipal != nil {
		st.NotPrincipals, _ = principalEntries(s.NotPrincipal)
	}
	b.conditions(&st, s)
	for _, c := range s.Conditions {
		note(c.Values)
	}
	st.HasVariables = hv
	if hv {
		b.flag("vars")
	}
	return st
}

// splitMatchers compiles a Resource/NotResource list into the patterns without `${` and those
// with it, whose reading depends on the policy Version.
func splitMatchers(list []string, o patternOpts) (plain, vars []regoMatcher) {
	for _, s := range list {
		m := compileMatcher(s, o)
		if m.Tokens != nil {
			vars = append(vars, m)
		} else {
			plain = append(plain, m)
		}
	}
	return plain, vars
}

// operatorFamily groups condition operators by the kind of value they compare; the Rego has one
// set of rules per family.
func operatorFamily(base string) string {
	switch {
	case strings.HasPrefix(base, "String"), strings.HasPrefix(base, "Arn"):
		return "str"
	case strings.HasPrefix(base, "Numeric"):
		return "num"
	case strings.HasPrefix(base, "Date"):
		return "date"
	case base == "Bool":
		return "bool"
	case base == "BinaryEquals":
		return "bin"
	case base == "Null":
		return "null"
	default:
		return "ip"
	}
}

// conditions writes a statement's conditions in the indexed forms the Rego reads (see
// regoStatement): by position, by operator family, by set operator, and the IfExists ones.
func (b *setBuilder) conditions(st *regoStatement, s *Statement) {
	st.ConditionIndexes = make([]int, 0, len(s.Conditions))
	for j, c := range s.Conditions {
		family := operatorFamily(c.Base)
		var vs, vv []regoMatcher
		for _, v := range c.Values {
			m := conditionValue(c.Base, v)
			if m.Tokens != nil && family == "str" {
				vv = append(vv, m)
			} else {
				m.Tokens, m.Mode = nil, modeOfLiteral(m)
				vs = append(vs, m)
			}
		}
		lk := strings.ToLower(c.Key)
		cond := &regoCondition{
			Index: j, Operator: c.Base, SetOperator: string(c.Set), IfExists: c.IfExists,
			Key: lk, KeyAsWritten: c.Key, RegionKey: IsRegionContextKey(lk),
			ValuesWithVariables: vv,
		}
		if family == "str" {
			g := groupMatchers(vs)
			cond.StringValues = g // the Rego reads string values through the group
			if g.Any {
				b.flag("strany")
			}
			if len(g.Prefixes) > 0 {
				b.flag("strp")
			}
			if len(g.Globs) > 0 {
				b.flag("strglob")
			}
		} else {
			cond.Values = vs
		}
		b.stKeys[b.cur] = append(b.stKeys[b.cur], lk)
		if cond.RegionKey {
			b.flag("region")
			st.HasRegionCondition = true
		}
		b.doc.ConditionsByKey[lk] = append(b.doc.ConditionsByKey[lk], [2]int{b.cur, j})
		if negatedOperators[c.Base] {
			b.flag("neg")
		}
		if len(vv) > 0 {
			b.flag("vv")
		}
		st.Conditions = append(st.Conditions, cond)
		st.ConditionIndexes = append(st.ConditionIndexes, j)
		st.ConditionKeys = append(st.ConditionKeys, lk)
		exact := exactStringCondition(c, cond.StringValues, vv)
		if exact {
			b.flag("strx")
		} else {
			b.flag(family)
			if st.ConditionsByFamily == nil {
				st.ConditionsByFamily = map[string][]*regoCondition{}
			}
			st.ConditionsByFamily[family] = append(st.ConditionsByFamily[family], cond)
		}
		switch {
		case exact:
			st.ExactConditions = append(st.ExactConditions, cond)
		case c.Base == "Null":
		case c.Set == SetForAnyValue:
			b.flag("any")
			st.ForAnyValueConditions = append(st.ForAnyValueConditions, cond)
		case c.Set == SetForAllValues:
			b.flag("all")
			st.ForAllValuesConditions = append(st.ForAllValuesConditions, cond)
		default:
			b.flag("c1")
			st.SingleValuedConditions = append(st.SingleValuedConditions, cond)
		}
		if c.IfExists {
			b.flag("ie")
			st.IfExistsConditions = append(st.IfExistsConditions, cond)
		}
	}
}

// modeOfLiteral keeps a matcher's mode only for its glob reading (a variable reading's mode goes
// with its tokens).
func modeOfLiteral(m regoMatcher) string {
	if m.Glob != nil {
		return m.Mode
	}
	return ""
}

// exactStringCondition reports whether a condition is a positive, single-valued string or ARN
// operator whose values are all exact strings (no wildcards, variables or case folding): the Rego
// decides those with one lookup of the request's value (exact_conditions), outside the general
// string rules.
func exactStringCondition(c Condition, g *regoMatcherGroup, vv []regoMatcher) bool {
	if g == nil || len(vv) > 0 || c.Set != "" || negatedOperators[c.Base] || g.Any {
		return false
	}
	return len(g.Prefixes) == 0 && len(g.Globs) == 0
}

var (
	accountIDRE  = regexp.MustCompile(`^[0-9]{12}$`)
	accountArnRE = regexp.MustCompile(`^arn:[^:]*:iam::([0-9]{12}):root$`)
	roleArnRE    = regexp.MustCompile(`^arn:([^:]*):iam::([0-9]{12}):role/(.+)$`)
)

// principalEntries normalizes a Principal element into a list of entries the Rego matches
// against the request's principal; anyP reports whether the element contains the wildcard.
func principalEntries(p *Principal) (entries []regoPrincipalEntry, anyP bool) {
	if p.Any {
		return []regoPrincipalEntry{{Type: "any", Value: "*"}}, true
	}
	for _, v := range p.AWS {
		e := regoPrincipalEntry{Type: "aws", Value: v}
		switch {
		case v != "" && strings.Trim(v, "*") == "":
			e.Type = "any"
			anyP = true
		case accountIDRE.MatchString(v):
			e.Account = v
		case accountArnRE.MatchString(v):
			e.Account = accountArnRE.FindStringSubmatch(v)[1]
		case roleArnRE.MatchString(v):
			m := roleArnRE.FindStringSubmatch(v)
			name := m[3]
			if j := strings.LastIndexByte(name, '/'); j >= 0 {
				name = name[j+1:]
			}
			e.Role = strings.ToLower(name)
			e.Partition = m[1]
			e.RoleAccount = m[2]
		}
		entries = append(entries, e)
	}
	for _, v := range p.Service {
		entries = append(entries, regoPrincipalEntry{Type: "service", Value: v})
	}
	for _, v := range p.Federated {
		entries = append(entries, regoPrincipalEntry{Type: "federated", Value: v})
	}
	for _, v := range p.CanonicalUser {
		entries = append(entries, regoPrincipalEntry{Type: "canonical", Value: v})
	}
	return entries, anyP
}

// negatedOperators are the condition operators that match when no value matches (and a missing
// key); the Rego's negated_operators lists the same names. input.ps.f.neg says one is used.
var negatedOperators = map[string]bool{
	"StringNotEquals": true, "StringNotEqualsIgnoreCase": true, "StringNotLike": true,
	"NumericNotEquals": true, "DateNotEquals": true, "NotIpAddress": true, "ArnNotEquals": true,
	"ArnNotLike": true,
}

// actionView is what the Rego's input says about the policy set for one action: flags (input.req.f)
// and wk (input.req.wk).
type actionView struct {
	flags, wk ast.Value
	// unsupported: the condition keys those statements use that the action never carries (an ast
	// set, for the lints).
	unsupported ast.Value
	// lists says whether the Rego may read input.req.ctxl: only the rules for single-valued
	// operators other than c1x (flag c1) and for set operators (any, all) do.
	lists bool
}

// actionView returns (cached) the view of the statements the action index offers for the action.
// flags: which elements occur in them, so that the Rego skips the rules for the others. wk: the
// statements with wildcard Action patterns (or NotAction) for the action's service, listed by the
// kind of pattern they contain (x exact, any "*", p prefixes, g glob patterns, na NotAction), so that
// each of the Rego's Action rules visits only the statements it can match. Like the index, these
// are supersets: the Rego still checks every statement's Action element.
func (ps *PolicySet) actionView(action, service string, meta ActionMeta) *actionView {
	if v, ok := ps.actionViews.Load(action); ok {
		return v.(*actionView)
	}
	on := map[string]bool{}
	kinds := map[string][]*ast.Term{}
	add := func(list []int, wild bool) {
		for _, i := range list {
			for f := range ps.stFlags[i] {
				on[f] = true
			}
			if wild {
				for _, k := range ps.stActKinds[i] {
					kinds[k] = append(kinds[k], ast.InternedTerm(i))
				}
			}
		}
	}
	add(ps.ax[action], false)
	add(ps.aws[service], true)
	add(ps.awa, true)
	flags := ast.NewObject()
	for _, f := range sortedSet(on) {
		flags.Insert(ast.StringTerm(f), ast.InternedTerm(true))
	}
	wk := ast.NewObject()
	for _, k := range []string{"exact", "any", "prefixes", "globs", "not_actions"} {
		if len(kinds[k]) > 0 {
			wk.Insert(ast.StringTerm(k), ast.ArrayTerm(kinds[k]...))
		}
	}
	view := &actionView{flags: flags, wk: wk, lists: on["c1"] || on["any"] || on["all"], unsupported: ps.unsupportedKeys(action, meta)}
	v, _ := ps.actionViews.LoadOrStore(action, view)
	return v.(*actionView)
}

// unsupportedKeys returns the condition keys that the statements the action index offers
// for the action use and the action never carries, as an ast set for the Rego's lints (which look
// only at statements whose Action matches, a subset of those).
func (ps *PolicySet) unsupportedKeys(action string, meta ActionMeta) ast.Value {
	set := ast.NewSet()
	if meta != nil {
		service, _, _ := strings.Cut(action, ":")
		seen := map[string]bool{}
		for _, list := range [][]int{ps.ax[action], ps.aws[service], ps.awa} {
			for _, i := range list {
				for _, k := range ps.stKeys[i] {
					if !seen[k] {
						seen[k] = true
						if !meta.SupportsConditionKey(k) {
							set.Add(ast.StringTerm(k))
						}
					}
				}
			}
		}
	}
	return set
}

// Document is a policy document as read from a file or an API, with the name explanations use.
type Document struct {
	Name string
	JSON []byte
}

// IdentityPolicySet parses identity policy documents (e.g. `check --policy` files) into a policy
// set. Errors name the document and the JSON path of every problem.
func IdentityPolicySet(docs ...Document) (*PolicySet, error) {
	in := PolicySetInput{}
	for _, d := range docs {
		p, err := ParsePolicy(d.Name, d.JSON)
		if err != nil {
			return nil, err
		}
		in.Identity = append(in.Identity, NamedPolicy{Name: d.Name, Policy: p})
	}
	return NewPolicySet(in)
}
