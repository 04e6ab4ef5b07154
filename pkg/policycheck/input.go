package policycheck

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The Rego's input document, as Go types: input.ps is a regoPolicySet (built once per policy set,
// policyset.go), input.req a regoRequest (built per evaluation, request.go). The json tags are the
// names the Rego reads (rego/iam.rego). Flags (bool with omitempty) are present only when true:
// the Rego tests them as bare references, which OPA's rule index evaluates without entering the
// rule. Lists with omitempty read the same absent or empty.

// regoPolicySet is input.ps.
type regoPolicySet struct {
	Statements []regoStatement `json:"statements"`
	// The action index (setBuilder.index): statements naming only exact actions, by lower-case
	// action; statements with wildcard patterns within one service, by service; the rest ("*",
	// wildcards in the service prefix, NotAction), to check for any action.
	StatementsByAction          map[string][]int `json:"statements_by_action"`
	WildcardStatementsByService map[string][]int `json:"wildcard_statements_by_service"`
	StatementsForAnyAction      []int            `json:"statements_for_any_action"`
	// SCPLevels lists the organization levels that have SCPs (root first); empty: no organization.
	SCPLevels []int `json:"scp_levels"`
	// StatementsWithVariables contain `${` (for the VARIABLE_IN_OLD_VERSION lint).
	StatementsWithVariables []int `json:"statements_with_variables"`
	// Elements says which elements occur anywhere in the set (the per-action view narrows it).
	Elements map[string]bool `json:"elements"`
	// ConditionsByKey lists, per lower-case condition key, the [statement, condition] pairs using it.
	ConditionsByKey map[string][][2]int `json:"conditions_by_key"`

	HasBoundary bool `json:"has_boundary,omitempty"`
	HasSession  bool `json:"has_session,omitempty"`
	HasResource bool `json:"has_resource,omitempty"`
	NoResource  bool `json:"no_resource,omitempty"`
	HasRCP      bool `json:"has_rcp,omitempty"`
	NoRCP       bool `json:"no_rcp,omitempty"`
	// Plain: no session policy, SCPs or boundary; Layered: some of them (exactly one is set).
	Plain   bool `json:"plain,omitempty"`
	Layered bool `json:"layered,omitempty"`
}

// regoStatement is one statement of input.ps.statements.
type regoStatement struct {
	// Kind: identity, boundary, scp, rcp, resource, session; Level: the organization level of SCPs
	// and RCPs; Index: the statement's position in its policy; Version: its policy's Version.
	Kind    string `json:"kind"`
	Level   int    `json:"level"`
	Index   int    `json:"index"`
	Effect  string `json:"effect"`
	Version string `json:"version"`

	// Actions groups the Action patterns; NotActions lists the NotAction matchers.
	Actions    *regoMatcherGroup `json:"actions,omitempty"`
	NotActions []regoMatcher     `json:"not_actions,omitempty"`
	// Resources groups the Resource patterns without `${`, ResourcesWithVariables lists those with
	// it (their reading depends on Version); the same for NotResource.
	Resources                 *regoMatcherGroup `json:"resources,omitempty"`
	ResourcesWithVariables    []regoMatcher     `json:"resources_with_variables,omitempty"`
	NotResources              []regoMatcher     `json:"not_resources,omitempty"`
	NotResourcesWithVariables []regoMatcher     `json:"not_resources_with_variables,omitempty"`
	// Principals / NotPrincipals (resource-based policies); PrincipalAny: the element has "*".
	Principals    []regoPrincipalEntry `json:"principals,omitempty"`
	NotPrincipals []regoPrincipalEntry `json:"not_principals,omitempty"`
	PrincipalAny  bool                 `json:"principal_any,omitempty"`

	// ConditionIndexes is always present: "every condition holds" iterates it.
	ConditionIndexes []int            `json:"condition_indexes"`
	Conditions       []*regoCondition `json:"conditions,omitempty"`
	// ConditionKeys: the lower-case key of each condition, by index.
	ConditionKeys []string `json:"condition_keys,omitempty"`
	// ConditionsByFamily: by operator family (str num date bool bin ip null), except the exact ones.
	ConditionsByFamily map[string][]*regoCondition `json:"conditions_by_family,omitempty"`
	// SingleValuedConditions: no set operator, not Null, not exact; ExactConditions: positive
	// single-valued string/ARN operators whose values are all exact strings (decided by one lookup);
	// ForAnyValue / ForAllValues; IfExists.
	SingleValuedConditions []*regoCondition `json:"single_valued_conditions,omitempty"`
	ExactConditions        []*regoCondition `json:"exact_conditions,omitempty"`
	ForAnyValueConditions  []*regoCondition `json:"for_any_value_conditions,omitempty"`
	ForAllValuesConditions []*regoCondition `json:"for_all_values_conditions,omitempty"`
	IfExistsConditions     []*regoCondition `json:"if_exists_conditions,omitempty"`
	// HasRegionCondition: some condition is on a region key (RegionContextKeys).
	HasRegionCondition bool `json:"has_region_condition,omitempty"`
	// HasVariables: some pattern contains `${`.
	HasVariables bool `json:"has_variables,omitempty"`
}

// regoCondition is one condition (operator, key, values) of a statement.
type regoCondition struct {
	Index       int    `json:"index"`
	Operator    string `json:"operator"` // the base operator, e.g. StringLike
	SetOperator string `json:"set_operator"`
	IfExists    bool   `json:"if_exists,omitempty"`
	// Key in lower case (keys are case-insensitive), KeyAsWritten for messages.
	Key          string `json:"key"`
	KeyAsWritten string `json:"key_as_written"`
	// RegionKey: Key is one of RegionContextKeys.
	RegionKey bool `json:"region_key,omitempty"`
	// StringValues groups the values of string and ARN operators; Values are the typed values of
	// the other families; ValuesWithVariables the string values containing `${`.
	StringValues        *regoMatcherGroup `json:"string_values,omitempty"`
	Values              []regoMatcher     `json:"values,omitempty"`
	ValuesWithVariables []regoMatcher     `json:"values_with_variables,omitempty"`
}

// regoMatcher is one compiled policy string (pattern.go): one literal reading (Any, Exact,
// Prefix or Glob in Mode) and, with policy variables, the variable reading (Tokens, in Mode); or a
// typed condition value (Text, with Number or CIDR when it parses).
type regoMatcher struct {
	Any    bool    `json:"any,omitempty"`
	Exact  *string `json:"exact,omitempty"`
	Prefix *string `json:"prefix,omitempty"`
	Glob   *string `json:"glob,omitempty"`
	Mode   string  `json:"mode,omitempty"`
	// Tokens: ["l", glob text] | ["v", lower-case key, default or null].
	Tokens []any `json:"tokens,omitempty"`

	Text   *string `json:"text,omitempty"`
	Number any     `json:"number,omitempty"` // float64 (numeric) or int64 nanoseconds (date)
	CIDR   string  `json:"cidr,omitempty"`
}

// regoMatcherGroup indexes the literal readings of matchers for the Rego's hot paths.
type regoMatcherGroup struct {
	Exact    map[string]bool `json:"exact"` // exact strings, as an object string -> true
	Prefixes []string        `json:"prefixes"`
	Globs    []string        `json:"globs"`
	Mode     string          `json:"mode,omitempty"` // of the globs
	Any      bool            `json:"any,omitempty"`  // "*" is among them
}

// regoPrincipalEntry is one entry of a Principal/NotPrincipal element.
type regoPrincipalEntry struct {
	// Type: any, aws, service, federated, canonical; Value as written.
	Type  string `json:"type"`
	Value string `json:"value"`
	// Account: the entry names an account (ID or root ARN). Role, Partition, RoleAccount: the entry
	// is a role ARN (lower-case role name).
	Account     string `json:"account,omitempty"`
	Role        string `json:"role,omitempty"`
	Partition   string `json:"partition,omitempty"`
	RoleAccount string `json:"role_account,omitempty"`
}

// toRegoValue converts a typed input part to the AST value the Rego reads, as its JSON encoding
// would (field names and omitempty from the json tags) but without encoding: a condition listed
// under several indexes is converted once and shared.
func toRegoValue(v any) (ast.Value, error) {
	c := astConverter{shared: map[sharedKey]*ast.Term{}}
	t, err := c.term(reflect.ValueOf(v))
	if err != nil {
		return nil, fmt.Errorf("policy set: converting for Rego: %w", err)
	}
	return t.Value, nil
}

type astConverter struct {
	shared map[sharedKey]*ast.Term // converted pointers (conditions)
}

type sharedKey struct {
	p uintptr
	t reflect.Type
}

func (c *astConverter) term(v reflect.Value) (*ast.Term, error) {
	switch v.Kind() {
	case reflect.Invalid:
		return ast.NullTerm(), nil
	case reflect.Pointer:
		if v.IsNil() {
			return ast.NullTerm(), nil
		}
		k := sharedKey{v.Pointer(), v.Type()}
		if t, ok := c.shared[k]; ok {
			return t, nil
		}
		t, err := c.term(v.Elem())
		if err == nil {
			c.shared[k] = t
		}
		return t, err
	case reflect.Interface:
		if v.IsNil() {
			return ast.NullTerm(), nil
		}
		return c.term(v.Elem())
	case reflect.String:
		return ast.StringTerm(v.String()), nil
	case reflect.Bool:
		return ast.BooleanTerm(v.Bool()), nil
	case reflect.Int, reflect.Int64:
		return ast.NumberTerm(json.Number(strconv.FormatInt(v.Int(), 10))), nil
	case reflect.Float64:
		return ast.FloatNumberTerm(v.Float()), nil
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return ast.NullTerm(), nil
		}
		terms := make([]*ast.Term, v.Len())
		for i := range terms {
			t, err := c.term(v.Index(i))
			if err != nil {
				return nil, err
			}
			terms[i] = t
		}
		return ast.ArrayTerm(terms...), nil
	case reflect.Map:
		if v.IsNil() {
			return ast.NullTerm(), nil
		}
		items := make([][2]*ast.Term, 0, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			t, err := c.term(iter.Value())
			if err != nil {
				return nil, err
			}
			items = append(items, ast.Item(ast.StringTerm(iter.Key().String()), t))
		}
		return ast.ObjectTerm(items...), nil
	case reflect.Struct:
		typ := v.Type()
		items := make([][2]*ast.Term, 0, typ.NumField())
		for i := range typ.NumField() {
			name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				return nil, fmt.Errorf("%s.%s has no json name", typ.Name(), typ.Field(i).Name)
			}
			f := v.Field(i)
			if opts == "omitempty" && f.IsZero() || opts == "omitempty" && (f.Kind() == reflect.Slice || f.Kind() == reflect.Map) && f.Len() == 0 {
				continue
			}
			t, err := c.term(f)
			if err != nil {
				return nil, err
			}
			items = append(items, ast.Item(ast.StringTerm(name), t))
		}
		return ast.ObjectTerm(items...), nil
	default:
		return nil, fmt.Errorf("cannot convert %s for Rego", v.Type())
	}
}

// regoRequest is input.req. request.go's astValue builds the same object directly as AST (it is
// built for every evaluation; TestRequestInputMatchesType keeps the two in step).
type regoRequest struct {
	Action          string           `json:"action"` // lower case
	Service         string           `json:"service"`
	Resource        string           `json:"resource"` // "*" for wildcard-only actions
	ResourceAccount string           `json:"resource_account"`
	Context         map[string]any   `json:"context"`       // lower-case key -> string | [string]
	ContextLists    map[string][]any `json:"context_lists"` // every value as a list (when read)
	Principal       regoPrincipal    `json:"principal"`
	UnsupportedKeys []string         `json:"unsupported_keys"` // a set in the AST
	Elements        map[string]bool  `json:"elements"`
	Wildcard        map[string][]int `json:"wildcard_statements"`
	WildcardOnly    bool             `json:"wildcard_only,omitempty"`
	NotWildcardOnly bool             `json:"not_wildcard_only,omitempty"`
	RCPsApply       bool             `json:"rcps_apply,omitempty"`
	HasUnsupported  bool             `json:"has_unsupported_keys,omitempty"`
	ResourceIsStar  bool             `json:"resource_is_star,omitempty"`
	ResourceNotStar bool             `json:"resource_is_not_star,omitempty"`
}

// regoPrincipal is input.req.principal.
type regoPrincipal struct {
	ARN     string `json:"arn"`
	Account string `json:"account"`
	// Kind: user, role, assumed-role, federated-user, root, service.
	Kind      string `json:"kind"`
	Partition string `json:"partition"`
	// SessionRole: the lower-case role name of an assumed-role session; FederatedUser: the IAM
	// user ARN behind a federated-user session.
	SessionRole   string `json:"session_role"`
	FederatedUser string `json:"federated_user"`
}
