package ec2

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// ErrNotUpstream is returned for an object that is not a gloo.solo.io Upstream.
var ErrNotUpstream = errors.New("not a gloo.solo.io Upstream")

// ErrNotEC2 is returned for an Upstream without an EC2 spec (neither spec.awsEc2 nor
// spec.upstreamSpec.awsEc2): callers leave it alone.
var ErrNotEC2 = errors.New("not an EC2 upstream")

// Known field names per object, used to flag unknown (usually misspelt) fields.
func awsEc2Fields() []string {
	return []string{"region", "secretRef", "roleArn", "filters", "publicIp", "port"}
}
func filterFields() []string    { return []string{"key", "kvPair"} }
func kvPairFields() []string    { return []string{"key", "value"} }
func secretRefFields() []string { return []string{"name", "namespace"} }

// FromUnstructured decodes an Upstream from an unstructured object. It returns ErrNotUpstream for
// another kind and ErrNotEC2 for a non-EC2 Upstream. Type errors inside the EC2 spec do not fail the
// decoding: they are findings that Validate reports.
func FromUnstructured(u *unstructured.Unstructured) (*Upstream, error) {
	if u == nil {
		return nil, fmt.Errorf("decode upstream: nil object: %w", ErrNotUpstream)
	}
	return FromObject(u.Object)
}

// DecodeJSON decodes an Upstream from a JSON document (e.g. an admission request's object).
func DecodeJSON(data []byte) (*Upstream, error) {
	var obj map[string]any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &obj); err != nil {
		return nil, fmt.Errorf("decode upstream JSON: %w", err)
	}
	return FromObject(obj)
}

// DecodeYAML decodes an Upstream from one YAML (or JSON) document.
func DecodeYAML(data []byte) (*Upstream, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("decode upstream YAML: %w", err)
	}
	return DecodeJSON(j)
}

// IsEC2 reports cheaply whether an object (as in unstructured.Unstructured.Object) is a
// gloo.solo.io Upstream with an EC2 spec.
func IsEC2(obj map[string]any) bool {
	av, _ := obj["apiVersion"].(string)
	k, _ := obj["kind"].(string)
	if !isUpstreamType(av, k) {
		return false
	}
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return false
	}
	if spec["awsEc2"] != nil {
		return true
	}
	us, ok := spec["upstreamSpec"].(map[string]any)
	return ok && us["awsEc2"] != nil
}

func isUpstreamType(apiVersion, kind string) bool {
	group, _, _ := strings.Cut(apiVersion, "/")
	return group == GlooGroup && kind == UpstreamKind
}

// FromObject decodes an Upstream from a generic object (JSON-like maps, slices, strings, bools and
// numbers as int64, float64, int or json.Number).
func FromObject(obj map[string]any) (*Upstream, error) {
	av, _ := obj["apiVersion"].(string)
	k, _ := obj["kind"].(string)
	if !isUpstreamType(av, k) {
		return nil, fmt.Errorf("decode upstream: apiVersion %q kind %q: %w", av, k, ErrNotUpstream)
	}
	u := &Upstream{}
	decodeMetadata(obj["metadata"], u)
	spec, _ := obj["spec"].(map[string]any)
	var current, legacy any
	if spec != nil {
		current = spec["awsEc2"]
		if us, ok := spec["upstreamSpec"].(map[string]any); ok {
			legacy = us["awsEc2"]
		}
	}
	switch {
	case current == nil && legacy == nil:
		return nil, fmt.Errorf("decode upstream %s: %w", u.Key(), ErrNotEC2)
	case current != nil:
		u.Shape = ShapeV1
		d := &decoder{}
		u.Spec = d.spec(current, ShapeV1.Path())
		if legacy != nil {
			d.add(compareShapes(u.Spec, legacy))
		}
		u.decoded = d.findings
	default:
		u.Shape = ShapeLegacy
		d := &decoder{}
		u.Spec = d.spec(legacy, ShapeLegacy.Path())
		u.decoded = d.findings
	}
	return u, nil
}

// compareShapes decodes the legacy block too and reports whether both shapes say the same.
func compareShapes(current Spec, legacy any) Finding {
	d := &decoder{}
	ls := d.spec(legacy, ShapeLegacy.Path())
	path := ShapeLegacy.Path()
	if len(d.findings.kept) == 0 && reflect.DeepEqual(normalizeSpec(current), normalizeSpec(ls)) {
		return newFinding(CodeBothShapesSame, path, field.ErrorTypeDuplicate, field.OmitValueType{},
			"both spec.awsEc2 and the legacy spec.upstreamSpec.awsEc2 are present (with the same content); spec.awsEc2 is used",
			"delete the legacy spec.upstreamSpec block")
	}
	return newFinding(CodeBothShapesDiffer, path, field.ErrorTypeForbidden, nil,
		"both spec.awsEc2 and the legacy spec.upstreamSpec.awsEc2 are present and they differ; Gloo >= 1.0 reads only spec.awsEc2, Gloo 0.x only spec.upstreamSpec.awsEc2",
		"keep one shape: for Gloo >= 1.0 delete spec.upstreamSpec")
}

// normalizeSpec makes nil and empty filter lists compare equal.
func normalizeSpec(s Spec) Spec {
	if len(s.Filters) == 0 {
		s.Filters = nil
	}
	return s
}

func decodeMetadata(v any, u *Upstream) {
	md, ok := v.(map[string]any)
	if !ok {
		return
	}
	u.Name, _ = md["name"].(string)
	u.Namespace, _ = md["namespace"].(string)
	if ann, ok := md["annotations"].(map[string]any); ok {
		u.Annotations = make(map[string]string, len(ann))
		for k, v := range ann {
			if s, ok := v.(string); ok {
				u.Annotations[k] = s
			}
		}
	}
}

// decoder turns a generic awsEc2 value into a Spec, collecting type problems as findings (bounded:
// see findingSet).
type decoder struct {
	findings findingSet
}

func (d *decoder) add(f Finding) { d.findings.add(f) }

func (d *decoder) wrongType(p *field.Path, v any, want, fix string) {
	d.add(newFinding(CodeWrongType, p, field.ErrorTypeTypeInvalid, safeBadValue(v),
		fmt.Sprintf("must be %s, not %s", want, describeValue(v)), fix))
}

func (d *decoder) unknownFields(m map[string]any, known []string, p *field.Path) {
	var unknown []string
	for k := range m {
		if !contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		fix := "remove it"
		if s := suggest(k, known); s != "" {
			fix = fmt.Sprintf("did you mean %q? rename it", s)
		}
		d.add(newFinding(CodeUnknownField, p.Child(truncate(k, 64)), field.ErrorTypeNotSupported, field.OmitValueType{},
			fmt.Sprintf("unknown field %s is ignored (known: %s)", quoteShort(k), strings.Join(known, ", ")), fix))
	}
}

func (d *decoder) spec(v any, p *field.Path) Spec {
	var s Spec
	m, ok := v.(map[string]any)
	if !ok {
		d.wrongType(p, v, "an object with region, secretRef, roleArn, filters, publicIp, port", "write awsEc2 as a mapping")
		return s
	}
	d.unknownFields(m, awsEc2Fields(), p)
	s.Region = d.str(m, "region", p)
	s.RoleARN = d.str(m, "roleArn", p)
	s.PublicIP = d.boolean(m, "publicIp", p)
	s.Port = d.port(m, p)
	s.SecretRef = d.secretRef(m, p)
	s.Filters = d.filters(m, p)
	return s
}

func (d *decoder) str(m map[string]any, key string, p *field.Path) string {
	v, ok := m[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.wrongType(p.Child(key), v, "a string", fmt.Sprintf("quote the value: %s: \"%s\"", key, plainString(v)))
		return ""
	}
	return s
}

func (d *decoder) boolean(m map[string]any, key string, p *field.Path) bool {
	v, ok := m[key]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		d.wrongType(p.Child(key), v, "a boolean", fmt.Sprintf("write %s: true or %s: false, without quotes", key, key))
		return false
	}
	return b
}

func (d *decoder) port(m map[string]any, p *field.Path) uint32 {
	v, ok := m["port"]
	if !ok || v == nil {
		return 0
	}
	pp := p.Child("port")
	n, isNum, integral := toNumber(v)
	switch {
	case !isNum:
		d.wrongType(pp, v, "an integer", fmt.Sprintf("write the number without quotes: port: %s", plainString(v)))
		return 0
	case !integral || n < 0 || n > math.MaxUint32:
		d.add(newFinding(CodePortRange, pp, field.ErrorTypeInvalid, safeBadValue(v),
			fmt.Sprintf("port %s is not an integer 1-65535", plainString(v)),
			"set port to the instances' service port, or remove it for the default 80"))
		return 0
	case n == 0:
		d.add(newFinding(CodePortZero, pp, field.ErrorTypeInvalid, int64(0),
			"port 0 is treated as unset by Gloo; the default 80 is used", "write port: 80 or remove the field"))
		return 0
	}
	return uint32(n)
}

func (d *decoder) secretRef(m map[string]any, p *field.Path) *SecretRef {
	v, ok := m["secretRef"]
	if !ok || v == nil {
		return nil
	}
	pp := p.Child("secretRef")
	sm, ok := v.(map[string]any)
	if !ok {
		d.wrongType(pp, v, "an object {name, namespace}", "write secretRef: {name: NAME, namespace: NS}")
		return &SecretRef{}
	}
	d.unknownFields(sm, secretRefFields(), pp)
	return &SecretRef{Name: d.str(sm, "name", pp), Namespace: d.str(sm, "namespace", pp)}
}

func (d *decoder) filters(m map[string]any, p *field.Path) []Filter {
	v, ok := m["filters"]
	if !ok || v == nil {
		return nil
	}
	pp := p.Child("filters")
	list, ok := v.([]any)
	if !ok {
		d.wrongType(pp, v, "a list of filters", "write each filter as a list item: `- key: K` or `- kvPair: {key: K, value: V}`")
		return nil
	}
	out := make([]Filter, 0, len(list))
	for i, item := range list {
		out = append(out, d.filter(item, pp.Index(i)))
	}
	return out
}

func (d *decoder) filter(v any, p *field.Path) Filter {
	var f Filter
	fm, ok := v.(map[string]any)
	if !ok {
		d.wrongType(p, v, "an object with key or kvPair", "write `- key: K` or `- kvPair: {key: K, value: V}`")
		return f
	}
	d.unknownFields(fm, filterFields(), p)
	if kv, ok := fm["key"]; ok && kv != nil {
		if s, ok := kv.(string); ok {
			f.Key = &s
		} else {
			d.wrongType(p.Child("key"), kv, "a string (the tag key)", fmt.Sprintf("quote the tag key: key: \"%s\"", plainString(kv)))
			empty := ""
			f.Key = &empty
		}
	}
	if pv, ok := fm["kvPair"]; ok && pv != nil {
		pp := p.Child("kvPair")
		pm, ok := pv.(map[string]any)
		if !ok {
			d.wrongType(pp, pv, "an object {key, value}", "write kvPair: {key: K, value: V}")
			f.KVPair = &KVPair{}
		} else {
			d.unknownFields(pm, kvPairFields(), pp)
			f.KVPair = &KVPair{Key: d.str(pm, "key", pp), Value: d.str(pm, "value", pp)}
		}
	}
	return f
}

// toNumber converts the numeric representations a decoded object may hold.
func toNumber(v any) (n float64, isNum, integral bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true, true
	case int:
		return float64(x), true, true
	case int32:
		return float64(x), true, true
	case uint32:
		return float64(x), true, true
	case uint64:
		return float64(x), true, true
	case float64:
		return x, true, x == math.Trunc(x) && !math.IsInf(x, 0)
	case float32:
		f := float64(x)
		return f, true, f == math.Trunc(f) && !math.IsInf(f, 0)
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := x.Float64()
		if err != nil {
			return 0, false, false
		}
		return f, true, f == math.Trunc(f) && !math.IsInf(f, 0)
	}
	return 0, false, false
}

// describeValue names a value's type for messages, with the value when short.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null (an empty value or list item)"
	case string:
		return "the string " + quoteShort(x)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case []any:
		if len(x) == 1 {
			return "a list (1 item)"
		}
		return fmt.Sprintf("a list (%d items)", len(x))
	case map[string]any:
		return "an object"
	}
	if _, ok, _ := toNumber(v); ok {
		return "the number " + plainString(v)
	}
	return fmt.Sprintf("a %T", v)
}

// plainString renders a scalar as the user would have typed it.
func plainString(v any) string {
	switch x := v.(type) {
	case string:
		return truncate(x, 64)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case nil:
		return "null"
	case []any, map[string]any:
		return "..."
	}
	return truncate(fmt.Sprint(v), 64)
}

// safeBadValue keeps scalars (truncated) as the field error's BadValue, omitting composites.
func safeBadValue(v any) any {
	switch x := v.(type) {
	case string:
		return truncate(x, 64)
	case bool, int64, float64:
		return x
	}
	return field.OmitValueType{}
}

func quoteShort(s string) string { return strconv.Quote(truncate(s, 64)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// cut on a rune boundary
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// quoteIfNeeded quotes a string for YAML-like display when it is empty or has special characters.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\r:#{}[],&*?|<>=!%@`'\"\\") || strings.TrimSpace(s) != s {
		return strconv.Quote(s)
	}
	return s
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the known name closest to s (case-insensitive equal, or edit distance <= 2).
func suggest(s string, known []string) string {
	if len(s) > 64 {
		return "" // no field name is that long; do not pay for the distance
	}
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, s) {
			return k
		}
		if d := levenshtein.ComputeDistance(strings.ToLower(s), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}
