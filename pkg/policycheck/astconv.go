package policycheck

import (
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toTerm converts the compiled policy-set document (built from maps, slices, strings, booleans and
// numbers) into an OPA term without reflection; *ast.Term values are passed through, so shared
// parts (a condition listed under several indexes) are converted once.
func toTerm(v any) (*ast.Term, error) {
	switch x := v.(type) {
	case *ast.Term:
		return x, nil
	case nil:
		return ast.NullTerm(), nil
	case string:
		return ast.StringTerm(x), nil
	case bool:
		return ast.BooleanTerm(x), nil
	case int:
		return ast.IntNumberTerm(x), nil
	case int64:
		return ast.NumberTerm(json.Number(fmt.Sprint(x))), nil
	case float64:
		return ast.FloatNumberTerm(x), nil
	case []any:
		terms := make([]*ast.Term, len(x))
		for i, e := range x {
			t, err := toTerm(e)
			if err != nil {
				return nil, err
			}
			terms[i] = t
		}
		return ast.ArrayTerm(terms...), nil
	case map[string]any:
		items := make([][2]*ast.Term, 0, len(x))
		for k, e := range x {
			t, err := toTerm(e)
			if err != nil {
				return nil, err
			}
			items = append(items, ast.Item(ast.StringTerm(k), t))
		}
		return ast.ObjectTerm(items...), nil
	case map[string][]any:
		m := make(map[string]any, len(x))
		for k, l := range x {
			m[k] = l
		}
		return toTerm(m)
	default:
		return nil, fmt.Errorf("policy set: cannot convert %T for Rego", v)
	}
}
