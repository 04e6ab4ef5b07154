package policycheck

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

//go:embed rego/*.rego
var regoFS embed.FS

// regoQuery is the one entry point of the Rego.
const regoQuery = "data.ec2guard.iam.result"

// Decision results.
const (
	Allowed      = "allowed"
	ExplicitDeny = "explicitDeny"
	ImplicitDeny = "implicitDeny"
)

// Decision is the engine's answer with its explanation.
type Decision struct {
	// Result is "allowed", "explicitDeny" or "implicitDeny".
	Result string `json:"decision"`
	// Action and Resource as evaluated (a wildcard-only action is evaluated against "*").
	Action   string `json:"action"`
	Resource string `json:"resource"`
	// MatchedStatements are the statements that apply to the request (Allow and Deny).
	MatchedStatements []StatementRef `json:"matchedStatements"`
	// Findings explain what made statements ineffective and how to fix them.
	Findings []Finding `json:"findings"`
	// IgnoredContextKeys are request context keys the action never carries; AWS ignores them.
	IgnoredContextKeys []string `json:"ignoredContextKeys,omitempty"`
	// Notes are remarks on how the request was read (e.g. a resource replaced by "*").
	Notes []string `json:"notes,omitempty"`
}

// IsAllowed reports whether the result is "allowed".
func (d Decision) IsAllowed() bool { return d.Result == Allowed }

// Option configures an Engine.
type Option func(*engineConfig)

type engineConfig struct {
	catalog   Catalog
	cacheSize int
}

// WithCatalog sets the action metadata (default: the generated iam-data catalog).
func WithCatalog(c Catalog) Option { return func(e *engineConfig) { e.catalog = c } }

// WithDecisionCache sets how many decisions are cached, keyed by (policy-set hash, request);
// 0 disables the cache. Default 4096.
func WithDecisionCache(n int) Option { return func(e *engineConfig) { e.cacheSize = n } }

// Engine evaluates requests against policy sets. It is safe for concurrent use; create one per
// process and share it.
type Engine struct {
	catalog  Catalog
	prepared rego.PreparedEvalQuery
	// decisions caches Decisions by (policy-set hash, prepared request): the one cache of the
	// engine (the per-action views of a policy set live with the PolicySet).
	decisions *lru.Cache[string, Decision]
}

// NewEngine compiles the embedded Rego once and prepares the query.
func NewEngine(ctx context.Context, opts ...Option) (*Engine, error) {
	cfg := engineConfig{cacheSize: 4096}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.catalog == nil {
		c, err := DefaultCatalog()
		if err != nil {
			return nil, fmt.Errorf("loading the IAM action catalog: %w", err)
		}
		cfg.catalog = c
	}
	modules, err := regoModules()
	if err != nil {
		return nil, err
	}
	opts2 := []func(*rego.Rego){rego.Query(regoQuery), globBuiltin()}
	for name, src := range modules {
		opts2 = append(opts2, rego.Module(name, src))
	}
	pq, err := rego.New(opts2...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compiling the IAM Rego: %w", err)
	}
	e := &Engine{catalog: cfg.catalog, prepared: pq}
	if cfg.cacheSize > 0 {
		c, err := lru.New[string, Decision](cfg.cacheSize)
		if err != nil {
			return nil, fmt.Errorf("creating the decision cache: %w", err)
		}
		e.decisions = c
	}
	return e, nil
}

// regoModules returns the embedded evaluation modules (test files excluded).
func regoModules() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(regoFS, "rego", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		b, err := regoFS.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = string(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading embedded Rego: %w", err)
	}
	return out, nil
}

// Catalog returns the action metadata the engine uses.
func (e *Engine) Catalog() Catalog { return e.catalog }

// Evaluate decides the request against the policy set.
func (e *Engine) Evaluate(ctx context.Context, ps *PolicySet, r Request) (Decision, error) {
	if ps == nil {
		return Decision{}, errors.New("evaluate: no policy set")
	}
	p, err := prepareRequest(e.catalog, r)
	if err != nil {
		return Decision{}, err
	}
	if err := ps.checkSubstitutedLengths(p); err != nil {
		return Decision{}, err
	}
	var key string
	if e.decisions != nil {
		key = p.cacheKey(ps.hash)
		if d, ok := e.decisions.Get(key); ok {
			return d.clone(), nil
		}
	}
	d, err := e.eval(ctx, ps, p)
	if err != nil {
		return Decision{}, err
	}
	if e.decisions != nil {
		e.decisions.Add(key, d.clone())
	}
	return d, nil
}

type regoResult struct {
	Decision string        `json:"decision"`
	Matched  []int         `json:"matched"`
	Findings []regoFinding `json:"findings"`
}

type regoFinding struct {
	Code   string `json:"code"`
	I      int    `json:"i"`
	Key    string `json:"key"`
	Reason string `json:"reason"`
}

func (e *Engine) eval(ctx context.Context, ps *PolicySet, p *preparedRequest) (Decision, error) {
	res, err := e.evalGeneric(ctx, regoInput(ps, p), p)
	if err != nil {
		return Decision{}, err
	}
	return decisionFrom(ps, p, res)
}

// evalGeneric runs the prepared query for data.ec2guard.iam.result.
func (e *Engine) evalGeneric(ctx context.Context, input ast.Value, p *preparedRequest) (regoResult, error) {
	rs, err := e.prepared.Eval(ctx, rego.EvalParsedInput(input), rego.EvalGenerateJSON(keepTerm))
	if err != nil {
		return regoResult{}, fmt.Errorf("evaluating %s: %w", p.action, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return regoResult{}, fmt.Errorf("evaluating %s: the Rego returned no result", p.action)
	}
	term, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return regoResult{}, fmt.Errorf("reading the Rego result: got %T", rs[0].Expressions[0].Value)
	}
	res, err := readResult(term.Value)
	if err != nil {
		return regoResult{}, fmt.Errorf("reading the Rego result: %w", err)
	}
	return res, nil
}

// decisionFrom turns the Rego's result into the Decision reported for the request.
func decisionFrom(ps *PolicySet, p *preparedRequest, res regoResult) (Decision, error) {
	d := Decision{
		Result:             res.Decision,
		Action:             actionLabel(p),
		Resource:           p.resource,
		MatchedStatements:  []StatementRef{},
		IgnoredContextKeys: p.ignored,
		Notes:              p.notes,
	}
	for _, i := range res.Matched {
		if i < 0 || i >= len(ps.refs) {
			return Decision{}, fmt.Errorf("reading the Rego result: statement index %d out of range", i)
		}
		d.MatchedStatements = append(d.MatchedStatements, ps.refs[i])
	}
	d.Findings = buildFindings(ps, p, res.Findings, d.Result)
	return d, nil
}

// regoInput is the Rego's input document: {"req": the request, "ps": the compiled policy set}.
func regoInput(ps *PolicySet, p *preparedRequest) ast.Value {
	req := p.astValue(ps.actionView(p.action, p.service, p.meta))
	return ast.NewObject(
		ast.Item(ast.InternedTerm("req"), ast.NewTerm(req)),
		ast.Item(ast.InternedTerm("ps"), ast.NewTerm(ps.doc)),
	)
}

// keepTerm hands the Rego result back as the AST term OPA computed, so that readResult can read
// it directly instead of converting it to Go maps and through JSON.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// readResult reads the Rego's result object: {"decision": string, "matched": [int],
// "findings": {{"code", "i", "key"?, "reason"?}}}.
func readResult(v ast.Value) (regoResult, error) {
	var res regoResult
	obj, ok := v.(ast.Object)
	if !ok {
		return res, fmt.Errorf("result is %s, not an object", ast.ValueName(v))
	}
	if t := obj.Get(ast.InternedTerm("decision")); t != nil {
		s, ok := t.Value.(ast.String)
		if !ok {
			return res, errors.New("decision is not a string")
		}
		res.Decision = string(s)
	}
	if t := obj.Get(ast.InternedTerm("matched")); t != nil {
		arr, ok := t.Value.(*ast.Array)
		if !ok {
			return res, errors.New("matched is not an array")
		}
		res.Matched = make([]int, 0, arr.Len())
		var err error
		arr.Foreach(func(e *ast.Term) {
			n, ok := astInt(e.Value)
			if !ok && err == nil {
				err = fmt.Errorf("matched: %v is not a statement index", e)
			}
			res.Matched = append(res.Matched, n)
		})
		if err != nil {
			return res, err
		}
	}
	if t := obj.Get(ast.InternedTerm("findings")); t != nil {
		set, ok := t.Value.(ast.Set)
		if !ok {
			return res, errors.New("findings is not a set")
		}
		var err error
		set.Foreach(func(e *ast.Term) {
			if err != nil {
				return
			}
			var f regoFinding
			f, err = readFinding(e.Value)
			res.Findings = append(res.Findings, f)
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func readFinding(v ast.Value) (regoFinding, error) {
	var f regoFinding
	obj, ok := v.(ast.Object)
	if !ok {
		return f, fmt.Errorf("finding %v is not an object", v)
	}
	str := func(k string) string {
		if t := obj.Get(ast.InternedTerm(k)); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				return string(s)
			}
		}
		return ""
	}
	f.Code, f.Key, f.Reason = str("code"), str("key"), str("reason")
	t := obj.Get(ast.InternedTerm("i"))
	if t == nil {
		return f, fmt.Errorf("finding %v has no statement index", v)
	}
	n, ok := astInt(t.Value)
	if !ok {
		return f, fmt.Errorf("finding %v: statement index is not an integer", v)
	}
	f.I = n
	return f, nil
}

func astInt(v ast.Value) (int, bool) {
	n, ok := v.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int()
}

func (d Decision) clone() Decision {
	c := d
	c.MatchedStatements = append([]StatementRef(nil), d.MatchedStatements...)
	c.Findings = append([]Finding(nil), d.Findings...)
	c.IgnoredContextKeys = append([]string(nil), d.IgnoredContextKeys...)
	c.Notes = append([]string(nil), d.Notes...)
	if c.MatchedStatements == nil {
		c.MatchedStatements = []StatementRef{}
	}
	if c.Findings == nil {
		c.Findings = []Finding{}
	}
	return c
}

// sortFindings orders findings by statement then code for stable output.
func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		ai, bi := -1, -1
		if a.Statement != nil {
			ai = a.order
		}
		if b.Statement != nil {
			bi = b.order
		}
		if ai != bi {
			return ai < bi
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Key < b.Key
	})
}
