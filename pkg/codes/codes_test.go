package codes

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var codeRe = regexp.MustCompile(`^EC2G\d{3}$`)

// Every declared rule is complete, and its templates render with exactly its named arguments.
func TestRulesComplete(t *testing.T) {
	seen := map[Code]bool{}
	for _, r := range Rules() {
		if !codeRe.MatchString(string(r.Code)) || seen[r.Code] {
			t.Errorf("bad or duplicate code %q", r.Code)
		}
		seen[r.Code] = true
		if r.Rule == "" || r.Fix == "" || r.Message == "" || r.Field == "" || (r.Severity != SeverityError && r.Severity != SeverityWarning) {
			t.Errorf("%s: incomplete declaration %+v", r.Code, r)
		}
		discoverer := strings.HasPrefix(string(r.Code), "EC2G7")
		if _, ok := r.Check.Info(); ok == discoverer {
			t.Errorf("%s: check %q (the discoverer's codes have none, every other code one)", r.Code, r.Check)
		}
		msg, fix := r.Placeholders()
		for i, n := range r.Args {
			if !strings.Contains(msg+fix, "‹"+n+"›") {
				t.Errorf("%s: argument %d (%s) is used by neither template", r.Code, i+1, n)
			}
		}
		if strings.Contains(msg+fix, "%!") {
			t.Errorf("%s: templates do not render with %d arguments: %q / %q", r.Code, len(r.Args), msg, fix)
		}
	}
	if _, ok := Lookup("EC2G999"); ok {
		t.Error("an undeclared code has a rule")
	}
	if Code("EC2G999").Severity() != SeverityError || Check("bogus").Default() != Deny {
		t.Error("an undeclared code or check does not fail closed")
	}
}

// Every check has a default action and at least one code.
func TestChecks(t *testing.T) {
	for _, ci := range Checks() {
		if ci.Covers == "" || len(ci.Check.Codes()) == 0 {
			t.Errorf("check %s: no description or no codes", ci.Check)
		}
		switch ci.Default {
		case Deny, Warn, Off:
		default:
			t.Errorf("check %s: default %q", ci.Check, ci.Default)
		}
	}
}

func TestCodesDocIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../docs/codes.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != Markdown() {
		t.Fatal("docs/codes.md is out of date: run go generate ./pkg/codes")
	}
}

// goFiles parses every .go file of the module (tests too when withTests) outside testdata.
func goFiles(t *testing.T, withTests bool) map[string]*ast.File {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]*ast.File{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || n == "vendor" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || (!withTests && strings.HasSuffix(path, "_test.go")) {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A code appears as a string literal in non-test Go code only in its declaration: everything else
// names it by its constant.
func TestNoCodeLiteralsOutsideTheDeclaration(t *testing.T) {
	anyCode := regexp.MustCompile(`EC2G\d{3}`)
	for path, f := range goFiles(t, false) {
		if strings.HasPrefix(path, "pkg/codes/") { // the declaration and its documentation
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && anyCode.MatchString(s) {
					t.Errorf("%s: code literal %s; use its pkg/codes constant", path, lit.Value)
				}
			}
			return true
		})
	}
}

// declaredNames maps each exported Code constant of this package to its code.
func declaredNames(t *testing.T) map[string]Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Code{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, n := range vs.Names {
				lit := vs.Values[i].(*ast.BasicLit)
				v, _ := strconv.Unquote(lit.Value)
				out[n.Name] = Code(v)
			}
		}
	}
	return out
}

// Every constant is declared with a rule, and every declared code is produced by some non-test
// code outside this package.
func TestEveryCodeDeclaredAndUsed(t *testing.T) {
	names := declaredNames(t)
	if len(names) != len(Rules()) {
		t.Errorf("%d constants, %d rules", len(names), len(Rules()))
	}
	for n, c := range names {
		if _, ok := Lookup(c); !ok {
			t.Errorf("%s (%s) has no rule", n, c)
		}
	}
	used := map[string]bool{}
	for path, f := range goFiles(t, false) {
		if strings.HasPrefix(path, "pkg/codes/") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "codes" {
					used[sel.Sel.Name] = true
				}
			}
			return true
		})
	}
	for n, c := range names {
		if !used[n] {
			t.Errorf("%s (%s) is declared but nothing reports it", c, n)
		}
	}
}

// renderers are the functions that render a code's templates from the arguments after their fixed
// parameters: name -> number of fixed parameters (the code first) and of arguments they add
// themselves.
var renderers = map[string]struct{ fixed, implicit int }{
	"newFinding":         {4, 0}, // pkg/ec2: code, path, type, bad value
	"newProblem":         {2, 0}, // pkg/admission: code, field
	"problem":            {2, 0}, // pkg/verdict: code, field
	"credentialsFailure": {1, 0}, // pkg/verdict
	"refusal":            {1, 0}, // pkg/discovery
	"add":                {2, 1}, // pkg/ec2.ParseSecret: code, type; the secret comes first
}

// Every call that renders a code passes as many arguments as the code's rule names.
func TestRenderCallsPassTheDeclaredArguments(t *testing.T) {
	names := declaredNames(t)
	// codeOf returns the declared code e names (codes.X), if it is one.
	codeOf := func(e ast.Expr) (Code, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", false
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "codes" {
			return "", false
		}
		c, ok := names[sel.Sel.Name]
		return c, ok
	}
	checked := 0
	for path, f := range goFiles(t, false) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || call.Ellipsis.IsValid() {
				return true
			}
			var c Code
			got := -1
			switch fun := call.Fun.(type) {
			case *ast.SelectorExpr: // codes.X.Message(...), codes.X.Fix(...)
				if code, ok := codeOf(fun.X); ok && (fun.Sel.Name == "Message" || fun.Sel.Name == "Fix") {
					c, got = code, len(call.Args)
				}
			case *ast.Ident:
				if r, ok := renderers[fun.Name]; ok && len(call.Args) >= r.fixed {
					if code, ok := codeOf(call.Args[0]); ok {
						c, got = code, len(call.Args)-r.fixed+r.implicit
					}
				}
			}
			if got < 0 {
				return true
			}
			checked++
			if want := len(c.Rule().Args); got != want {
				t.Errorf("%s: %s rendered with %d arguments, its rule names %d (%v)", path, c, got, want, c.Rule().Args)
			}
			return true
		})
	}
	if checked < len(Rules()) {
		t.Errorf("only %d render calls found for %d codes: is a renderer missing from the list?", checked, len(Rules()))
	}
}
