// Package iampolicy checks the IAM policies docs/iam.md documents for ec2guard's own identity
// against the AWS operations the code can call, with ec2guard's own IAM engine (pkg/policycheck).
package iampolicy

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// sdkClients are the AWS SDK clients ec2guard builds (pkg/awsclients), by IAM service prefix.
var sdkClients = map[string]reflect.Type{
	"ec2": reflect.TypeOf(&ec2.Client{}),
	"iam": reflect.TypeOf(&iam.Client{}),
	"sts": reflect.TypeOf(&sts.Client{}),
}

// indirectOperations are SDK functions that call an operation on a client they are given.
var indirectOperations = map[string]string{
	"stscreds.NewAssumeRoleProvider":      "sts:AssumeRole",
	"ec2.NewDescribeInstancesPaginator":   "ec2:DescribeInstances",
	"iam.NewListUserPoliciesPaginator":    "iam:ListUserPolicies",
	"stscreds.NewWebIdentityRoleProvider": "sts:AssumeRoleWithWebIdentity",
}

// Operation is one AWS API the code can call, and where.
type Operation struct {
	Action string   // service:Operation
	Files  []string // repository-relative files naming it
}

// operationNames maps each operation method of the SDK clients to its service:Operation names
// (several when services share a name).
func operationNames() map[string][]string {
	ctxType := reflect.TypeOf((*context.Context)(nil)).Elem()
	out := map[string][]string{}
	for svc, typ := range sdkClients {
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			// func (c *Client) Op(ctx context.Context, in *OpInput, optFns ...func(*Options)) (*OpOutput, error)
			if m.Type.NumIn() != 4 || m.Type.In(1) != ctxType || !m.Type.IsVariadic() || m.Type.NumOut() != 2 {
				continue
			}
			if in := m.Type.In(2); in.Kind() != reflect.Pointer || in.Elem().Name() != m.Name+"Input" {
				continue
			}
			out[m.Name] = append(out[m.Name], svc+":"+m.Name)
		}
	}
	return out
}

// CodeOperations lists every AWS operation the non-test Go code under dirs (relative to root)
// names: a call of, or an interface method named after, an operation of the SDK clients
// ec2guard builds, in a file importing that client's package; and the SDK helpers that call one.
func CodeOperations(root string, dirs ...string) ([]Operation, error) {
	names := operationNames()
	found := map[string]map[string]bool{}
	add := func(action, file string) {
		if found[action] == nil {
			found[action] = map[string]bool{}
		}
		found[action][file] = true
	}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return fmt.Errorf("parse %s: %w", path, err)
			}
			rel, _ := filepath.Rel(root, path)
			imported := map[string]bool{}
			for _, imp := range f.Imports {
				p := strings.Trim(imp.Path.Value, `"`)
				for svc := range sdkClients {
					if p == "github.com/aws/aws-sdk-go-v2/service/"+svc {
						imported[svc] = true
					}
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				var name string
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if x, ok := n.X.(*ast.Ident); ok {
						if action, ok := indirectOperations[x.Name+"."+n.Sel.Name]; ok {
							add(action, rel)
						}
					}
					name = n.Sel.Name
				case *ast.InterfaceType:
					for _, m := range n.Methods.List {
						for _, id := range m.Names {
							for _, action := range names[id.Name] {
								if imported[strings.SplitN(action, ":", 2)[0]] {
									add(action, rel)
								}
							}
						}
					}
					return true
				default:
					return true
				}
				for _, action := range names[name] {
					if imported[strings.SplitN(action, ":", 2)[0]] {
						add(action, rel)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var out []Operation
	for action, files := range found {
		op := Operation{Action: action}
		for f := range files {
			op.Files = append(op.Files, f)
		}
		slices.Sort(op.Files)
		out = append(out, op)
	}
	slices.SortFunc(out, func(a, b Operation) int { return strings.Compare(a.Action, b.Action) })
	return out, nil
}
