package policycheck

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// The queries partial evaluation specialises, bound to x: rego/iam.rego's pe_result (decision
// and matched statements) and region_mismatch (REGION_MISMATCH findings).
const (
	peQuery     = "x = data.ec2guard.iam.pe_result"
	regionQuery = "x = data.ec2guard.iam.region_mismatch"
)

// peUnknowns are the parts of the input left unknown: the request's context. Everything else in
// the input is fixed by the policy set and the request's action, resource and principal.
var peUnknowns = []*ast.Term{ast.MustParseTerm("input.req.ctx"), ast.MustParseTerm("input.req.ctxl")}

// specializer builds and caches decision queries specialised by OPA's partial evaluation: the
// policy set and the request apart from its context keys are known, so the residual query keeps
// only the comparisons with context values (for DescribeInstances typically the region).
type specializer struct {
	partial, region rego.PreparedPartialQuery
	modules         []*ast.Module // the evaluation modules, for residuals that refer to them
	empty           *ast.Module   // see emptyPartials
	after           int
	budget          time.Duration // time one partial evaluation may take
	seen            *lru.Cache[string, int]
	queries         *lru.Cache[string, *specialized]

	// Specialised queries are built in the background, off the request path: inflight holds the
	// keys being built, background counts the builds running (wait).
	mu         sync.Mutex
	inflight   map[string]bool
	background sync.WaitGroup
	// beforeBuild, when set (tests), runs at the start of every background build.
	beforeBuild func()
}

// defaultPEBudget bounds the time one partial evaluation may take.
const defaultPEBudget = 100 * time.Millisecond

// maxBackgroundBuilds bounds the partial evaluations running at once: each takes a core for up to
// the budget, and a burst of new principals must not starve the requests being answered. A key
// that finds no free slot is counted afresh and tried again later.
const maxBackgroundBuilds = 1

// maxResidualRules bounds the support rules of a residual query: OPA enters a rule body for
// about 3.5 µs, and a residual with one rule per statement and condition (large policy sets where
// many statements match the action) is slower than the generic query's indexed rules.
const maxResidualRules = 60

// specialized is one residual query; pq is nil when partial evaluation gave nothing usable, and
// the generic query is used for that key.
type specialized struct {
	pq *rego.PreparedEvalQuery
	// rq computes region_mismatch; nil when the statements offered for the action have no
	// condition on a region key (the set is then empty).
	rq *rego.PreparedEvalQuery
	// static are the findings that do not depend on the request's context (all but
	// REGION_MISMATCH), as the generic query computed them when the query was specialised.
	static []regoFinding
}

func newSpecializer(ctx context.Context, modules map[string]string, after, size int, budget time.Duration) (*specializer, error) {
	names := make([]string, 0, len(modules))
	for name := range modules {
		names = append(names, name)
	}
	sort.Strings(names)
	opts := []func(*rego.Rego){globBuiltin()}
	parsed := make([]*ast.Module, 0, len(names))
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, modules[name], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("parsing the IAM Rego %s: %w", name, err)
		}
		parsed = append(parsed, m)
		opts = append(opts, rego.ParsedModule(m))
	}
	ppq, err := rego.New(append(opts, rego.Query(peQuery))...).PrepareForPartial(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing the IAM Rego for partial evaluation: %w", err)
	}
	rpq, err := rego.New(append(opts, rego.Query(regionQuery))...).PrepareForPartial(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing the IAM Rego for partial evaluation: %w", err)
	}
	empty, err := emptyPartials(parsed)
	if err != nil {
		return nil, err
	}

	seen, err := lru.New[string, int](size * 4)
	if err != nil {
		return nil, fmt.Errorf("creating the specialisation cache: %w", err)
	}
	queries, err := lru.New[string, *specialized](size)
	if err != nil {
		return nil, fmt.Errorf("creating the specialisation cache: %w", err)
	}
	return &specializer{
		partial: ppq, region: rpq, modules: parsed, empty: empty, after: max(after, 1), budget: budget,
		seen: seen, queries: queries, inflight: map[string]bool{},
	}, nil
}

// emptyPartials returns a module in partial evaluation's namespace that defines every partial
// set and partial object of the evaluation package with a rule that never holds. Partial
// evaluation emits no support rule for a partial set whose rules all fail for the known input, yet
// can leave a reference to the whole set (`ct := cond_true`) in the residual: without a
// definition that reference would be undefined instead of the empty set the generic query sees.
func emptyPartials(modules []*ast.Module) (*ast.Module, error) {
	var b strings.Builder
	b.WriteString("package partial.ec2guard.iam\n\n")
	seen := map[string]bool{}
	for _, m := range modules {
		if m.Package.Path.String() != "data.ec2guard.iam" {
			continue
		}
		for _, r := range m.Rules {
			name := r.Head.Name.String()
			if r.Head.Name == "" {
				name = r.Head.Reference[0].String()
			}
			switch {
			case seen[name]:
			case r.Head.RuleKind() == ast.MultiValue:
				fmt.Fprintf(&b, "%s contains pe_x if {\n\tpe_x := 0\n\tfalse\n}\n\n", name)
			case len(r.Head.Ref()) > 1:
				fmt.Fprintf(&b, "%s[pe_k] := pe_v if {\n\tpe_k := 0\n\tpe_v := 0\n\tfalse\n}\n\n", name)
			default:
				continue
			}
			seen[name] = true
		}
	}
	m, err := ast.ParseModuleWithOpts("pe_empty.rego", b.String(), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("building the empty partial rules: %w", err)
	}
	return m, nil
}

// specKey identifies what a residual query is specialised for: everything in the Rego's input
// except the context keys.
func specKey(ps *PolicySet, p *preparedRequest) string {
	return strings.Join([]string{ps.hash, p.action, p.resource, p.account, p.principal.arn}, "\x00")
}

// query returns the specialised query for the request's key; nil means "use the generic query".
// Once the key has been seen often enough, the query is built in the background (partial
// evaluation takes milliseconds, up to the budget, which no admission request should wait for);
// the generic query answers until it is ready.
func (s *specializer) query(ctx context.Context, ps *PolicySet, p *preparedRequest, input ast.Value, generic genericEval) *specialized {
	key := specKey(ps, p)
	if q, ok := s.queries.Get(key); ok {
		if q.pq == nil {
			return nil
		}
		return q
	}
	n := 1
	if c, ok := s.seen.Get(key); ok {
		n = c + 1
	}
	if n < s.after {
		s.seen.Add(key, n)
		return nil
	}
	s.seen.Remove(key)
	s.buildInBackground(context.WithoutCancel(ctx), key, ps, p, input, generic)
	return nil
}

// buildInBackground builds the key's query in a goroutine unless it is being built already or
// maxBackgroundBuilds are running. The build is bounded by the partial-evaluation budget, not by
// the request that triggered it.
func (s *specializer) buildInBackground(ctx context.Context, key string, ps *PolicySet, p *preparedRequest, input ast.Value, generic genericEval) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[key] || len(s.inflight) >= maxBackgroundBuilds {
		return
	}
	s.inflight[key] = true
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		if s.beforeBuild != nil {
			s.beforeBuild()
		}
		s.queries.Add(key, s.build(ctx, ps, p, input, generic))
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
	}()
}

// wait blocks until the background builds started so far have finished.
func (s *specializer) wait() { s.background.Wait() }

// genericEval evaluates the generic query for the input.
type genericEval func(ctx context.Context, input ast.Value) (regoResult, error)

// build partially evaluates pe_result for the input with the context unknown. A failure is not
// an error for the caller: the key is then served by the generic query. So is a request whose
// offered statements have Resource patterns with policy variables: their findings depend on the
// context.
func (s *specializer) build(ctx context.Context, ps *PolicySet, p *preparedRequest, input ast.Value, generic genericEval) *specialized {
	if ps.actionView(p.action, p.service).flags.(ast.Object).Get(ast.InternedTerm("rv")) != nil {
		return &specialized{}
	}
	full, err := generic(ctx, input)
	if err != nil {
		return &specialized{}
	}
	var static []regoFinding
	for _, f := range full.Findings {
		if f.Code != CodeRegionMismatch {
			static = append(static, f)
		}
	}
	// Partial evaluation can take far longer than evaluating (resource policies, policy variables
	// and negations multiply its branches): past the budget the key stays on the generic query.
	pctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	pq, err := s.residual(pctx, s.partial, input)
	if err != nil {
		return &specialized{}
	}
	q := &specialized{pq: pq, static: static}
	if ps.actionView(p.action, p.service).flags.(ast.Object).Get(ast.InternedTerm("region")) != nil {
		if q.rq, err = s.residual(pctx, s.region, input); err != nil {
			return &specialized{}
		}
	}
	return q
}

// residual partially evaluates one query and prepares the result for evaluation.
func (s *specializer) residual(ctx context.Context, ppq rego.PreparedPartialQuery, input ast.Value) (*rego.PreparedEvalQuery, error) {
	pqs, err := ppq.Partial(ctx, rego.EvalParsedInput(input), rego.EvalParsedUnknowns(peUnknowns))
	if err != nil {
		return nil, err
	}
	if len(pqs.Queries) != 1 {
		return nil, fmt.Errorf("partial evaluation gave %d queries", len(pqs.Queries))
	}
	rules := 0
	for _, m := range pqs.Support {
		rules += len(m.Rules)
	}
	if rules > maxResidualRules {
		return nil, fmt.Errorf("the residual has %d rules", rules)
	}
	opts := []func(*rego.Rego){rego.ParsedQuery(pqs.Queries[0]), rego.ParsedModule(s.empty), globBuiltin()}
	for _, m := range pqs.Support {
		opts = append(opts, rego.ParsedModule(m))
	}
	if refersToPolicy(pqs) { // compiling the whole Rego again costs milliseconds
		for _, m := range s.modules {
			opts = append(opts, rego.ParsedModule(m))
		}
	}
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	return &pq, nil
}

// eval runs the residual query and reads pe_result into the same form as result.
func (q *specialized) eval(ctx context.Context, input ast.Value) (regoResult, error) {
	v, err := evalResidual(ctx, q.pq, input)
	if err != nil {
		return regoResult{}, err
	}
	res, err := readPEResult(v, q.static)
	if err != nil {
		return regoResult{}, fmt.Errorf("reading the specialised Rego result: %w", err)
	}
	if q.rq == nil || res.Decision == Allowed {
		return res, nil
	}
	v, err = evalResidual(ctx, q.rq, input)
	if err != nil {
		return regoResult{}, err
	}
	if err := addRegionMismatch(&res, v); err != nil {
		return regoResult{}, fmt.Errorf("reading the specialised Rego result: %w", err)
	}
	return res, nil
}

// refersToPolicy reports whether a residual refers to the evaluation package (rules partial
// evaluation left in place, such as functions inside saved comprehensions).
func refersToPolicy(pqs *rego.PartialQueries) bool {
	found := false
	visit := func(r ast.Ref) bool {
		if !found && r.HasPrefix(policyRef) {
			found = true
		}
		return found
	}
	for _, q := range pqs.Queries {
		ast.WalkRefs(q, visit)
	}
	for _, m := range pqs.Support {
		ast.WalkRefs(m, visit)
	}
	return found
}

var policyRef = ast.MustParseRef("data.ec2guard.iam")

// evalResidual evaluates a specialised query and returns the value bound to x.
func evalResidual(ctx context.Context, pq *rego.PreparedEvalQuery, input ast.Value) (ast.Value, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalGenerateJSON(keepTerm))
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, errors.New("the specialised Rego returned no result")
	}
	term, ok := rs[0].Bindings["x"].(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("reading the specialised Rego result: got %T", rs[0].Bindings["x"])
	}
	return term.Value, nil
}

// readPEResult reads pe_result ({"flags": set, "effective": set of indices}) into what
// readResult returns for result: the decision from the flags (the else chain of decision),
// matched as the effective indices in ascending order (how result lists them), findings the
// static ones (addRegionMismatch adds the others).
func readPEResult(v ast.Value, static []regoFinding) (regoResult, error) {
	var res regoResult
	obj, ok := v.(ast.Object)
	if !ok {
		return res, fmt.Errorf("result is %s, not an object", ast.ValueName(v))
	}
	set := func(k string) (ast.Set, error) {
		t := obj.Get(ast.InternedTerm(k))
		if t == nil {
			return ast.NewSet(), nil
		}
		s, ok := t.Value.(ast.Set)
		if !ok {
			return nil, fmt.Errorf("%s is not a set", k)
		}
		return s, nil
	}
	flags, err := set("flags")
	if err != nil {
		return res, err
	}
	switch {
	case flags.Contains(ast.InternedTerm(Allowed)):
		res.Decision = Allowed
	case flags.Contains(ast.InternedTerm(ExplicitDeny)):
		res.Decision = ExplicitDeny
	default:
		res.Decision = ImplicitDeny
	}
	eff, err := set("effective")
	if err != nil {
		return res, err
	}
	res.Matched = make([]int, 0, eff.Len())
	for _, t := range eff.Slice() { // sorted, as result's comprehension iterates the set
		n, ok := astInt(t.Value)
		if !ok {
			return res, fmt.Errorf("effective: %v is not a statement index", t)
		}
		res.Matched = append(res.Matched, n)
	}
	res.Findings = append(make([]regoFinding, 0, len(static)), static...)
	return res, nil
}

// addRegionMismatch adds a REGION_MISMATCH finding per entry of region_mismatch (a set of
// [statement index, condition key]).
func addRegionMismatch(res *regoResult, v ast.Value) error {
	rm, ok := v.(ast.Set)
	if !ok {
		return fmt.Errorf("region_mismatch is %s, not a set", ast.ValueName(v))
	}
	for _, t := range rm.Slice() {
		pair, ok := t.Value.(*ast.Array)
		if !ok || pair.Len() != 2 {
			return fmt.Errorf("region_mismatch: %v is not [index, key]", t)
		}
		i, ok := astInt(pair.Elem(0).Value)
		key, ok2 := pair.Elem(1).Value.(ast.String)
		if !ok || !ok2 {
			return fmt.Errorf("region_mismatch: %v is not [index, key]", t)
		}
		res.Findings = append(res.Findings, regoFinding{Code: CodeRegionMismatch, I: i, Key: string(key)})
	}
	return nil
}

// Specialize builds the specialised query for the request's policy set, action, resource and
// principal now instead of on a later evaluation (see WithSpecialization), e.g. when a webhook
// learns a principal's policies. It is a no-op when specialisation is off.
func (e *Engine) Specialize(ctx context.Context, ps *PolicySet, r Request) error {
	if ps == nil {
		return errors.New("specialize: no policy set")
	}
	if e.spec == nil {
		return nil
	}
	p, err := prepareRequest(e.catalog, r)
	if err != nil {
		return err
	}
	key := specKey(ps, p)
	if _, ok := e.spec.queries.Get(key); !ok {
		e.spec.queries.Add(key, e.spec.build(ctx, ps, p, regoInput(ps, p), e.genericFor(p)))
	}
	return nil
}

// genericFor returns the generic evaluation of requests like p, for building specialised queries.
func (e *Engine) genericFor(p *preparedRequest) genericEval {
	return func(ctx context.Context, input ast.Value) (regoResult, error) { return e.evalGeneric(ctx, input, p) }
}
