package policycheck

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestRegoUnitTests runs the test_ rules of rego/*_test.rego with OPA's test runner.
func TestRegoUnitTests(t *testing.T) {
	modules := map[string]*ast.Module{}
	err := fs.WalkDir(regoFS, "rego", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, err := regoFS.ReadFile(path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModule(path, string(src))
		if err != nil {
			return err
		}
		modules[path] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := tester.NewRunner().RaiseBuiltinErrors(true).AddCustomBuiltins(regoTestBuiltins()).Run(context.Background(), modules)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r := range ch {
		n++
		name := strings.TrimPrefix(r.Package, "data.") + "." + r.Name
		switch {
		case r.Error != nil:
			t.Errorf("%s: error: %v", name, r.Error)
		case r.Fail:
			t.Errorf("%s: FAIL", name)
		case r.Skip:
			t.Logf("%s: skipped", name)
		}
	}
	if n == 0 {
		t.Fatal("no Rego tests found")
	}
	t.Logf("%d Rego tests run", n)
}

// regoTestBuiltins declares the engine's own Rego functions (glob.go) for OPA's test runner.
func regoTestBuiltins() []*tester.Builtin {
	return []*tester.Builtin{{
		Decl: &ast.Builtin{Name: globBuiltinDecl.Name, Decl: globBuiltinDecl.Decl},
		Func: globBuiltin(),
	}}
}
