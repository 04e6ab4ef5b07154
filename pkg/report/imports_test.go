package report

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestReportIsALeaf: the discoverer and the CLI use pkg/report; pkg/report must not depend on the
// discoverer (it reads the ec2guard.io/discovered annotation's model from pkg/discovered).
func TestReportIsALeaf(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		parsed, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasSuffix(p, "/pkg/discovery") || strings.Contains(p, "/pkg/discovery/") {
				t.Errorf("%s imports %s; pkg/report must not depend on the discoverer", f, p)
			}
		}
	}
}
