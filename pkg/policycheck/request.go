package policycheck

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Request is one authorization question: may Principal perform Action on Resource?
type Request struct {
	// Principal is the ARN of the caller (IAM user, role, assumed-role or federated-user session,
	// account root) or a service principal such as "ec2.amazonaws.com".
	Principal string `json:"principal"`
	// Action is "service:Action", e.g. "ec2:DescribeInstances" (case-insensitive).
	Action string `json:"action"`
	// Resource is the resource ARN, or "*". Wildcard-only actions are always evaluated against "*".
	Resource string `json:"resource,omitempty"`
	// ResourceAccount owns the resource; empty means the resource ARN's account, else the
	// principal's (a same-account request).
	ResourceAccount string `json:"resourceAccount,omitempty"`
	// Context holds the request's context keys: a string, a list of strings, or a boolean/number
	// (turned into its text, as AWS context values are strings).
	Context map[string]any `json:"context,omitempty"`
}

// DescribeInstancesRequest is the request EC2 discovery makes: ec2:DescribeInstances by the
// principal in a region, with the context AWS sets for it (aws:RequestedRegion, ec2:Region and the
// principal keys derivable from the ARN).
func DescribeInstancesRequest(principalARN, account, region string) Request {
	ctx := map[string]any{"aws:SecureTransport": "true"}
	for _, k := range RegionContextKeys() {
		ctx[k] = region
	}
	if p, err := parsePrincipal(principalARN); err == nil {
		if p.account != "" {
			ctx["aws:PrincipalAccount"] = p.account
		}
		if p.kind != "service" {
			ctx["aws:PrincipalArn"] = principalARN
			if p.kind == "assumed-role" && p.roleARN != "" {
				ctx["aws:PrincipalArn"] = p.roleARN
			}
		}
		switch p.kind {
		case "user":
			ctx["aws:PrincipalType"] = "User"
			ctx["aws:username"] = p.name
		case "assumed-role":
			ctx["aws:PrincipalType"] = "AssumedRole"
		case "federated-user":
			ctx["aws:PrincipalType"] = "FederatedUser"
		case "root":
			ctx["aws:PrincipalType"] = "Account"
		}
	}
	if account == "" {
		if p, err := parsePrincipal(principalARN); err == nil {
			account = p.account
		}
	}
	return Request{
		Principal:       principalARN,
		Action:          "ec2:DescribeInstances",
		Resource:        "*",
		ResourceAccount: account,
		Context:         ctx,
	}
}

type principalInfo struct {
	arn     string
	account string
	kind    string // user, role, assumed-role, federated-user, root, service
	part    string
	srole   string // lower-case role name of an assumed-role session
	roleARN string // the role behind an assumed-role session (path unknown: "role/Name")
	fuser   string // the IAM user ARN behind a federated-user session
	name    string // user name (for aws:username)
}

var (
	iamArnRE     = regexp.MustCompile(`^arn:([^:]+):(iam|sts)::([0-9]{12}):(.+)$`)
	servicePrRE  = regexp.MustCompile(`^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$`)
	accountOnlyR = regexp.MustCompile(`^[0-9]{12}$`)
)

func parsePrincipal(s string) (principalInfo, error) {
	if servicePrRE.MatchString(s) {
		return principalInfo{arn: s, kind: "service"}, nil
	}
	if accountOnlyR.MatchString(s) {
		return principalInfo{arn: "arn:aws:iam::" + s + ":root", account: s, kind: "root", part: "aws"}, nil
	}
	m := iamArnRE.FindStringSubmatch(s)
	if m == nil {
		return principalInfo{}, fmt.Errorf("principal %s is not an IAM user, role, session or root ARN, nor a service principal", quote(s))
	}
	p := principalInfo{arn: s, part: m[1], account: m[3]}
	res := m[4]
	switch {
	case m[2] == "iam" && res == "root":
		p.kind = "root"
	case m[2] == "iam" && strings.HasPrefix(res, "user/"):
		p.kind = "user"
		p.name = res[strings.LastIndexByte(res, '/')+1:]
	case m[2] == "iam" && strings.HasPrefix(res, "role/"):
		p.kind = "role"
	case m[2] == "sts" && strings.HasPrefix(res, "assumed-role/"):
		parts := strings.Split(res, "/")
		if len(parts) < 3 || parts[1] == "" {
			return principalInfo{}, fmt.Errorf("principal %s: an assumed-role ARN is arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION", quote(s))
		}
		p.kind = "assumed-role"
		p.srole = strings.ToLower(parts[1])
		p.roleARN = fmt.Sprintf("arn:%s:iam::%s:role/%s", p.part, p.account, parts[1])
	case m[2] == "sts" && strings.HasPrefix(res, "federated-user/"):
		p.kind = "federated-user"
		p.fuser = fmt.Sprintf("arn:%s:iam::%s:user/%s", p.part, p.account, res[len("federated-user/"):])
	default:
		return principalInfo{}, fmt.Errorf("principal %s is not an IAM user, role, session or root ARN", quote(s))
	}
	return p, nil
}

// arnAccount returns the account field of an ARN, or "".
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

// preparedRequest is a Request normalized for the Rego, plus what the Decision reports about it.
type preparedRequest struct {
	action    string // canonical lower case
	service   string
	resource  string
	account   string
	wildcard  bool
	rcp       bool
	meta      ActionMeta
	principal principalInfo
	ctx       map[string]any // lower-case key -> string | []string
	ignored   []string
	notes     []string
}

var actionNameRE = regexp.MustCompile(`^[a-zA-Z0-9-]+:[a-zA-Z0-9-]+$`)

func prepareRequest(cat Catalog, r Request) (*preparedRequest, error) {
	if !actionNameRE.MatchString(r.Action) {
		return nil, fmt.Errorf("action %s: must be \"service:Action\" without wildcards", quote(r.Action))
	}
	meta, ok := cat.LookupAction(r.Action)
	if !ok {
		return nil, fmt.Errorf("action %s: unknown to the IAM action catalog", quote(r.Action))
	}
	pr, err := parsePrincipal(r.Principal)
	if err != nil {
		return nil, err
	}
	p := &preparedRequest{
		action:    strings.ToLower(r.Action),
		meta:      meta,
		principal: pr,
		wildcard:  meta.WildcardOnly(),
		resource:  r.Resource,
	}
	p.service, _, _ = strings.Cut(p.action, ":")
	p.rcp = cat.RCPSupported(p.service)
	if p.resource == "" {
		p.resource = "*"
	}
	if p.wildcard && p.resource != "*" {
		p.notes = append(p.notes, fmt.Sprintf("%s supports no resource-level permissions: evaluated against Resource \"*\" instead of %s", r.Action, quote(p.resource)))
		p.resource = "*"
	}
	if p.resource != "*" && !strings.HasPrefix(p.resource, "arn:") {
		return nil, fmt.Errorf("resource %s: must be \"*\" or an ARN", quote(p.resource))
	}
	p.account = r.ResourceAccount
	if p.account == "" {
		p.account = arnAccount(r.Resource)
	}
	if p.account == "" {
		p.account = pr.account
	}
	p.ctx = make(map[string]any, len(r.Context))
	keys := make([]string, 0, len(r.Context))
	for k := range r.Context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals, err := contextValues(r.Context[k])
		if err != nil {
			return nil, fmt.Errorf("context key %s: %w", quote(k), err)
		}
		lk := strings.ToLower(k)
		if !meta.SupportsConditionKey(lk) {
			p.ignored = append(p.ignored, k)
			continue
		}
		typ, _ := cat.ConditionKeyType(lk)
		if isArrayKeyType(typ) {
			list := make([]any, len(vals))
			for i, v := range vals {
				list[i] = v
			}
			p.ctx[lk] = list
		} else if len(vals) > 0 {
			p.ctx[lk] = vals[0]
		}
	}
	return p, nil
}

// contextValues turns a context value into strings.
func contextValues(v any) ([]string, error) {
	one := func(x any) (string, error) {
		switch t := x.(type) {
		case string:
			return t, nil
		case bool:
			return strconv.FormatBool(t), nil
		case float64:
			return strconv.FormatFloat(t, 'f', -1, 64), nil
		case int:
			return strconv.Itoa(t), nil
		case int64:
			return strconv.FormatInt(t, 10), nil
		case fmt.Stringer: // json.Number
			return t.String(), nil
		default:
			return "", fmt.Errorf("must be a string, number, boolean or a list of them, got %s", jsonType(x))
		}
	}
	switch t := v.(type) {
	case []string:
		return t, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, err := one(x)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	default:
		s, err := one(v)
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
}

// astValue builds the Rego input's "req" object. Boolean flags are present only when true: the
// Rego tests them as bare references, which OPA's rule index can evaluate without entering the
// rule (a false value would still count as defined). view holds the policy set's flags and
// wildcard-pattern lists for the action (PolicySet.actionView); ctxl is filled only when the flags
// say the Rego may read it.
func (p *preparedRequest) astValue(view *actionView) ast.Value {
	uk := view.unsupported
	ctxItems := make([][2]*ast.Term, 0, len(p.ctx))
	var ctxlItems [][2]*ast.Term // every key's values as a list, only when the Rego reads them
	if view.lists {
		ctxlItems = make([][2]*ast.Term, 0, len(p.ctx))
	}
	for k, v := range p.ctx {
		key := ast.StringTerm(k)
		switch t := v.(type) {
		case string:
			s := ast.StringTerm(t)
			ctxItems = append(ctxItems, ast.Item(key, s))
			if view.lists {
				ctxlItems = append(ctxlItems, ast.Item(key, ast.ArrayTerm(s)))
			}
		case []any:
			terms := make([]*ast.Term, len(t))
			for i, x := range t {
				terms[i] = ast.StringTerm(x.(string))
			}
			arr := ast.ArrayTerm(terms...)
			ctxItems = append(ctxItems, ast.Item(key, arr))
			if view.lists {
				ctxlItems = append(ctxlItems, ast.Item(key, arr))
			}
		}
	}
	ctx := ast.NewObject(ctxItems...)
	ctxl := ast.NewObject(ctxlItems...)
	pr := ast.NewObject(
		ast.Item(ast.InternedTerm("arn"), ast.StringTerm(p.principal.arn)),
		ast.Item(ast.InternedTerm("account"), ast.StringTerm(p.principal.account)),
		ast.Item(ast.InternedTerm("kind"), ast.StringTerm(p.principal.kind)),
		ast.Item(ast.InternedTerm("partition"), ast.StringTerm(p.principal.part)),
		ast.Item(ast.InternedTerm("session_role"), ast.StringTerm(p.principal.srole)),
		ast.Item(ast.InternedTerm("federated_user"), ast.StringTerm(p.principal.fuser)),
	)
	star := p.resource == "*"
	items := make([][2]*ast.Term, 0, 16)
	items = append(items,
		ast.Item(ast.InternedTerm("action"), ast.StringTerm(p.action)),
		ast.Item(ast.InternedTerm("service"), ast.StringTerm(p.service)),
		ast.Item(ast.InternedTerm("resource"), ast.StringTerm(p.resource)),
		ast.Item(ast.InternedTerm("resource_account"), ast.StringTerm(p.account)),
		ast.Item(ast.InternedTerm("context"), ast.NewTerm(ctx)),
		ast.Item(ast.InternedTerm("context_lists"), ast.NewTerm(ctxl)),
		ast.Item(ast.InternedTerm("principal"), ast.NewTerm(pr)),
		ast.Item(ast.InternedTerm("unsupported_keys"), ast.NewTerm(uk)),
		ast.Item(ast.InternedTerm("elements"), ast.NewTerm(view.flags)),
		ast.Item(ast.InternedTerm("wildcard_statements"), ast.NewTerm(view.wk)),
	)
	flag := func(name string, on bool) {
		if on {
			items = append(items, ast.Item(ast.InternedTerm(name), ast.InternedTerm(true)))
		}
	}
	flag("wildcard_only", p.wildcard)
	flag("not_wildcard_only", !p.wildcard)
	flag("rcps_apply", p.rcp)
	flag("has_unsupported_keys", uk.(ast.Set).Len() > 0)
	flag("resource_is_star", star)
	flag("resource_is_not_star", !star)
	return ast.NewObject(items...)
}

// cacheKey identifies the prepared request for the decision cache.
func (p *preparedRequest) cacheKey(psHash string) string {
	var b strings.Builder
	b.WriteString(psHash)
	for _, s := range []string{p.action, p.resource, p.account, p.principal.arn} {
		b.WriteByte(0)
		b.WriteString(s)
	}
	keys := make([]string, 0, len(p.ctx))
	for k := range p.ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteByte(0)
		b.WriteString(k)
		b.WriteByte(1)
		switch t := p.ctx[k].(type) {
		case string:
			b.WriteString(strconv.Quote(t))
		case []any:
			for _, x := range t {
				b.WriteString(strconv.Quote(x.(string)))
				b.WriteByte(',')
			}
		}
	}
	for _, k := range p.ignored {
		b.WriteByte(2)
		b.WriteString(k)
	}
	return b.String()
}

// RegionContextKeys returns the context keys that carry a request's region, in AWS's spelling:
// aws:RequestedRegion (global) and ec2:Region (EC2's own). The one list the engine (region lints,
// DescribeInstancesRequest), the collector's IAM simulator call and the reports use.
func RegionContextKeys() []string { return []string{"aws:RequestedRegion", "ec2:Region"} }

// IsRegionContextKey reports whether key (any case) is one of RegionContextKeys.
func IsRegionContextKey(key string) bool {
	for _, k := range RegionContextKeys() {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}
