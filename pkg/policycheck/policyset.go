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
	b := &setBuilder{ax: map[string][]any{}, aws: map[string][]any{}, kidx: map[string][]any{}, flags: map[string]any{}, opsSeen: map[string]any{}}
	var errs []error
	add := func(kind PolicyKind, level int, np NamedPolicy) {
		if np.Policy == nil {
			errs = append(errs, fmt.Errorf("%s policy %q: no document", kind, np.Name))
			return
		}
		vk := kind
		if err := np.Policy.Validate(np.Name, vk); err != nil {
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
	scpLevels := make([]any, 0, len(in.SCPs))
	for l, level := range in.SCPs {
		scpLevels = append(scpLevels, l)
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
	doc := map[string]any{
		"st":    b.stmts,
		"ax":    b.ax,
		"aws":   b.aws,
		"awa":   nonNil(b.awa),
		"scpl":  scpLevels,
		"hv":    nonNil(b.hv),
		"f":     b.flags,
		"opset": setTerm(b.opsSeen),
		"kidx":  b.kidx,
	}
	// Flags are present only when true (see astValue in request.go).
	layered := in.Boundary != nil || in.Session != nil || len(in.SCPs) > 0
	hasRCP := false
	for _, level := range in.RCPs {
		hasRCP = hasRCP || len(level) > 0
	}
	for name, on := range map[string]bool{
		"has_boundary": in.Boundary != nil, "has_session": in.Session != nil,
		"has_resource": in.Resource != nil, "no_resource": in.Resource == nil,
		"has_rcp": hasRCP, "no_rcp": !hasRCP,
		"plain": !layered, "layered": layered,
	} {
		if on {
			doc[name] = true
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	term, err := toTerm(doc)
	if err != nil {
		return nil, err
	}
	val := term.Value
	sum := sha256.Sum256([]byte(b.digest.String()))
	return &PolicySet{
		hash:        hex.EncodeToString(sum[:]),
		ax:          intIndex(b.ax),
		aws:         intIndex(b.aws),
		awa:         ints(b.awa),
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
	err      error // first conversion error
	stmts    []any
	refs     []StatementRef
	raw      []*Statement
	versions []string
	// kidx lists, per lower-case condition key, the [statement, condition] pairs using it.
	kidx map[string][]any
	cur  int // index of the statement being built
	// ax, aws and awa are the action index (see index).
	ax  map[string][]any
	aws map[string][]any
	awa []any
	hv  []any // statements containing `${` (for the VARIABLE_IN_OLD_VERSION lint)
	// flags say which elements occur anywhere in the set; the Rego skips rules for absent ones.
	// stFlags are the same per statement (see PolicySet.actionView).
	flags   map[string]any
	stFlags []map[string]bool
	// opsSeen is the set of condition operators used anywhere (as an object name -> true).
	opsSeen map[string]any
	stKeys  [][]string // each statement's lower-case condition keys
	// stActKinds lists the kinds of Action patterns of each statement (see actionView).
	stActKinds [][]string
	// varPatterns are the patterns with policy variables (see variablePatterns).
	varPatterns []variablePattern
}

// flag records that the statement being built has an element (see flags).
func (b *setBuilder) flag(name string) {
	b.flags[name] = true
	b.stFlags[b.cur][name] = true
}

func (b *setBuilder) addPolicy(kind PolicyKind, level int, np NamedPolicy) {
	fmt.Fprintf(&b.digest, "%s\x00%d\x00%q\x00%x\n", kind, level, np.Name, np.Policy.Digest())
	for i := range np.Policy.Statements {
		s := &np.Policy.Statements[i]
		idx := len(b.stmts)
		b.cur = idx
		b.stFlags = append(b.stFlags, map[string]bool{})
		b.stKeys = append(b.stKeys, nil)
		b.stActKinds = append(b.stActKinds, nil)
		stmt := b.statement(kind, level, np, i, s)
		if stmt["hv"] == true {
			b.hv = append(b.hv, idx)
		}
		b.stmts = append(b.stmts, stmt)
		b.refs = append(b.refs, StatementRef{Kind: kind, Level: level, Policy: np.Name, Sid: s.Sid, Index: i, Effect: s.Effect})
		b.raw = append(b.raw, s)
		b.versions = append(b.versions, np.Policy.Version)
		b.varPatterns = append(b.varPatterns, variablePatterns(idx, np.Policy.Version, s)...)
		b.index(idx, s)
	}
}

// index files a statement under the action index the Rego starts from: ax for statements that
// name only exact actions (by action), aws for wildcard patterns within one service (by service),
// awa for the rest ("*", wildcards in the service prefix, NotAction). Together they are a
// superset of the statements whose Action element can match a request's action; the Rego then
// checks the patterns exactly.
func (b *setBuilder) index(idx int, s *Statement) {
	if len(s.NotAction) > 0 {
		b.awa = append(b.awa, idx)
		return
	}
	exact := true
	services := map[string]bool{}
	for _, a := range s.Action {
		svc, _, _ := strings.Cut(strings.ToLower(a), ":")
		if a == "*" || strings.ContainsAny(svc, "*?") {
			b.awa = append(b.awa, idx)
			return
		}
		if strings.ContainsAny(a, "*?") {
			exact = false
		}
		services[svc] = true
	}
	if !exact {
		for _, svc := range sortedSet(services) {
			b.aws[svc] = append(b.aws[svc], idx)
		}
		return
	}
	seen := map[string]bool{}
	for _, a := range s.Action {
		la := strings.ToLower(a)
		if !seen[la] {
			seen[la] = true
			b.ax[la] = append(b.ax[la], idx)
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

// groupMatchers indexes the literal readings of matchers for the Rego's hot paths: "x" is the set of
// exact strings (as an object string -> true), "p" the prefixes, "g" the glob patterns (matched in
// mode "m"), "any" whether "*" is among them. Matchers with a variable reading are not included.
func groupMatchers(ms []any) map[string]any {
	x := map[string]any{}
	var p, g []any
	anyM := false
	mode := ""
	for _, mi := range ms {
		m := mi.(map[string]any)
		if _, ok := m["t"]; ok {
			continue
		}
		switch {
		case m["any"] == true:
			anyM = true
		case m["x"] != nil:
			x[m["x"].(string)] = true
		case m["p"] != nil:
			p = append(p, m["p"])
		case m["g"] != nil:
			g = append(g, m["g"])
			mode = m["m"].(string)
		}
	}
	out := map[string]any{"x": x, "p": nonNil(p), "g": nonNil(g)}
	if mode != "" {
		out["m"] = mode
	}
	if anyM {
		out["any"] = true
	}
	return out
}

// groupKinds lists which parts of a groupMatchers result are not empty.
func groupKinds(g map[string]any) []string {
	var kinds []string
	if len(g["x"].(map[string]any)) > 0 {
		kinds = append(kinds, "x")
	}
	if g["any"] == true {
		kinds = append(kinds, "any")
	}
	if len(g["p"].([]any)) > 0 {
		kinds = append(kinds, "p")
	}
	if len(g["g"].([]any)) > 0 {
		kinds = append(kinds, "g")
	}
	return kinds
}

func matchers(list []string, o patternOpts) []any {
	out := make([]any, 0, len(list))
	for _, s := range list {
		out = append(out, compileMatcher(s, o))
	}
	return out
}

func (b *setBuilder) statement(kind PolicyKind, level int, np NamedPolicy, i int, s *Statement) map[string]any {
	version := np.Policy.Version
	if version == "" {
		version = Version20081017
	}
	kindName := string(kind)
	if kind == KindBoundary {
		kindName = "boundary"
	}
	st := map[string]any{
		"k": kindName,
		"l": level,
		"i": i,
		"e": string(s.Effect),
		"v": version,
	}
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
		st["na"] = matchers(s.NotAction, actionOpts)
		b.stActKinds[b.cur] = []string{"na"}
	} else {
		g := groupMatchers(matchers(s.Action, actionOpts))
		st["ag"] = g
		b.stActKinds[b.cur] = groupKinds(g)
	}
	switch {
	case s.HasResource:
		splitMatchers(st, "r", s.Resource, resourceOpts)
		note(s.Resource)
	case s.HasNotResource:
		b.flag("nr")
		splitMatchers(st, "nr", s.NotResource, resourceOpts)
		note(s.NotResource)
	default:
		b.flag("noresource")
	}
	if st["rv"] != nil || st["nrv"] != nil {
		b.flag("rv")
	}
	if s.Principal != nil {
		entries, anyP := principalEntries(s.Principal)
		st["pr"] = entries
		st["pany"] = anyP
	} else if s.NotPrincipal != nil {
		entries, _ := principalEntries(s.NotPrincipal)
		st["npr"] = entries
	}
	b.conditions(st, s)
	for _, c := range s.Conditions {
		note(c.Values)
	}
	st["hv"] = hv
	if hv {
		b.flag("vars")
	}
	return st
}

// splitMatchers compiles a Resource/NotResource list into elem (patterns without `${`) and
// elem+"v" (patterns with it, whose reading depends on the policy Version).
func splitMatchers(st map[string]any, elem string, list []string, o patternOpts) {
	var plain, vars []any
	for _, s := range list {
		m := compileMatcher(s, o)
		if _, ok := m["t"]; ok {
			vars = append(vars, m)
		} else {
			plain = append(plain, m)
		}
	}
	if len(plain) > 0 {
		if elem == "r" {
			st["rg"] = groupMatchers(plain)
		} else {
			st[elem] = plain
		}
	}
	if len(vars) > 0 {
		st[elem+"v"] = vars
	}
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

// conditions writes a statement's conditions in the indexed forms the Rego reads (see the header of
// rego/iam.rego): by position, by operator family, by set operator, and the IfExists ones.
func (b *setBuilder) conditions(st map[string]any, s *Statement) {
	cl := make([]any, 0, len(s.Conditions))
	cj := make([]any, 0, len(s.Conditions))
	ck := make([]any, 0, len(s.Conditions))
	cf := map[string][]any{}
	var c1, c1x, cany, call, cie []any
	for j, c := range s.Conditions {
		family := operatorFamily(c.Base)
		var vs, vv []any
		for _, v := range c.Values {
			m := conditionValue(c.Base, v)
			if _, ok := m["t"]; ok && family == "str" {
				vv = append(vv, m)
			} else {
				delete(m, "t")
				vs = append(vs, m)
			}
		}
		var g map[string]any
		if family == "str" {
			g = groupMatchers(nonNil(vs))
			vs = nil // the Rego reads string values through g
			if g["any"] == true {
				b.flag("strany")
			}
			if len(g["p"].([]any)) > 0 {
				b.flag("strp")
			}
			if len(g["g"].([]any)) > 0 {
				b.flag("strglob")
			}
		}
		lk := strings.ToLower(c.Key)
		b.stKeys[b.cur] = append(b.stKeys[b.cur], lk)
		if lk == "aws:requestedregion" || lk == "ec2:region" { // the Rego's region_keys
			b.flag("region")
		}
		b.kidx[lk] = append(b.kidx[lk], []any{b.cur, j})
		condMap := map[string]any{
			"j":    j,
			"op":   c.Base,
			"set":  string(c.Set),
			"ie":   c.IfExists,
			"k":    lk,
			"kraw": c.Key,
		}
		// Absent and empty read the same in the Rego; leaving empty parts out keeps the
		// document small.
		if g != nil {
			condMap["g"] = g
		}
		if len(vs) > 0 {
			condMap["vs"] = vs
		}
		if len(vv) > 0 {
			condMap["vv"] = vv
		}
		// Converted once here: the condition is listed under several indexes below.
		cond, err := toTerm(condMap)
		if err != nil {
			b.err = err
			return
		}
		b.opsSeen[c.Base] = true
		if negatedOperators[c.Base] {
			b.flag("neg")
		}
		if len(vv) > 0 {
			b.flag("vv")
		}
		cl = append(cl, cond)
		cj = append(cj, j)
		ck = append(ck, lk)
		exact := exactStringCondition(c, g, vv)
		if exact {
			b.flag("strx")
		} else {
			b.flag(family)
			cf[family] = append(cf[family], cond)
		}
		switch {
		case exact:
			c1x = append(c1x, cond)
		case c.Base == "Null":
		case c.Set == SetForAnyValue:
			b.flag("any")
			cany = append(cany, cond)
		case c.Set == SetForAllValues:
			b.flag("all")
			call = append(call, cond)
		default:
			b.flag("c1")
			c1 = append(c1, cond)
		}
		if c.IfExists {
			b.flag("ie")
			b.opsSeen[c.Base] = true
			cie = append(cie, cond)
		}
	}
	families := map[string]any{}
	for f, list := range cf {
		families[f] = list
	}
	st["cj"] = cj // always present: the Rego's "every condition holds" iterates it
	if len(cl) == 0 {
		return
	}
	st["cl"] = cl
	st["ck"] = ck
	cks := map[string]any{}
	for _, k := range ck {
		cks[k.(string)] = true
	}
	st["cks"] = setTerm(cks)
	st["cf"] = families
	for name, list := range map[string][]any{"c1": c1, "c1x": c1x, "cany": cany, "call": call, "cie": cie} {
		if len(list) > 0 {
			st[name] = list
		}
	}
}

// exactStringCondition reports whether a condition is a positive, single-valued string or ARN
// operator whose values are all exact strings (no wildcards, variables or case folding): the Rego
// decides those with one lookup of the request's value (c1x), outside the general string rules
// (cf.str, c1).
func exactStringCondition(c Condition, g map[string]any, vv []any) bool {
	if g == nil || len(vv) > 0 || c.Set != "" || negatedOperators[c.Base] || g["any"] == true {
		return false
	}
	return len(g["p"].([]any)) == 0 && len(g["g"].([]any)) == 0
}

// setTerm turns the keys of m into a Rego set.
func setTerm(m map[string]any) *ast.Term {
	terms := make([]*ast.Term, 0, len(m))
	for _, k := range sortedKeys(m) {
		terms = append(terms, ast.StringTerm(k))
	}
	return ast.SetTerm(terms...)
}

func nonNil(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

var (
	accountIDRE  = regexp.MustCompile(`^[0-9]{12}$`)
	accountArnRE = regexp.MustCompile(`^arn:[^:]*:iam::([0-9]{12}):root$`)
	roleArnRE    = regexp.MustCompile(`^arn:([^:]*):iam::([0-9]{12}):role/(.+)$`)
)

// principalEntries normalizes a Principal element into a list of entries the Rego matches
// against the request's principal; anyP reports whether the element contains the wildcard.
func principalEntries(p *Principal) (entries []any, anyP bool) {
	if p.Any {
		return []any{map[string]any{"t": "any", "s": "*"}}, true
	}
	for _, v := range p.AWS {
		e := map[string]any{"t": "aws", "s": v}
		switch {
		case v != "" && strings.Trim(v, "*") == "":
			e["t"] = "any"
			anyP = true
		case accountIDRE.MatchString(v):
			e["acct"] = v
		case accountArnRE.MatchString(v):
			e["acct"] = accountArnRE.FindStringSubmatch(v)[1]
		case roleArnRE.MatchString(v):
			m := roleArnRE.FindStringSubmatch(v)
			name := m[3]
			if j := strings.LastIndexByte(name, '/'); j >= 0 {
				name = name[j+1:]
			}
			e["role"] = strings.ToLower(name)
			e["part"] = m[1]
			e["racct"] = m[2]
		}
		entries = append(entries, e)
	}
	for _, v := range p.Service {
		entries = append(entries, map[string]any{"t": "service", "s": v})
	}
	for _, v := range p.Federated {
		entries = append(entries, map[string]any{"t": "federated", "s": v})
	}
	for _, v := range p.CanonicalUser {
		entries = append(entries, map[string]any{"t": "canonical", "s": v})
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
	for _, k := range []string{"x", "any", "p", "g", "na"} {
		if len(kinds[k]) > 0 {
			wk.Insert(ast.StringTerm(k), ast.ArrayTerm(kinds[k]...))
		}
	}
	view := &actionView{flags: flags, wk: wk, lists: on["c1"] || on["any"] || on["all"], unsupported: ps.unsupportedKeys(action, meta)}
	v, _ := ps.actionViews.LoadOrStore(action, view)
	return v.(*actionView)
}

func intIndex(m map[string][]any) map[string][]int {
	out := make(map[string][]int, len(m))
	for k, l := range m {
		out[k] = ints(l)
	}
	return out
}

func ints(l []any) []int {
	out := make([]int, len(l))
	for i, x := range l {
		out[i] = x.(int)
	}
	return out
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
