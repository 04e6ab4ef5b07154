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

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// ErrNotUpstream is returned for an object that is not a gloo.solo.io Upstream.
var ErrNotUpstream = errors.New("not a gloo.solo.io Upstream")

// ErrNotEC2 is returned for an Upstream without an EC2 spec (neither spec.awsEc2 nor
// spec.upstreamSpec.awsEc2): callers leave it alone.
var ErrNotEC2 = errors.New("not an EC2 upstream")

// fieldName is a field of one of Gloo's protobuf messages: its JSON name (lowerCamelCase, what
// Gloo writes) and its protobuf name (snake_case). Gloo decodes Upstreams as protobuf JSON, which
// accepts both and, when both are present, uses the JSON name.
type fieldName struct{ json, proto string }

// Known fields per message, used to read the protobuf spellings and to flag unknown (usually
// misspelt) fields.
func awsEc2Fields() []fieldName {
	return []fieldName{{"region", "region"}, {"secretRef", "secret_ref"}, {"roleArn", "role_arn"},
		{"filters", "filters"}, {"publicIp", "public_ip"}, {"port", "port"}}
}
func filterFields() []fieldName    { return []fieldName{{"key", "key"}, {"kvPair", "kv_pair"}} }
func kvPairFields() []fieldName    { return []fieldName{{"key", "key"}, {"value", "value"}} }
func secretRefFields() []fieldName { return []fieldName{{"name", "name"}, {"namespace", "namespace"}} }

// The spec-level fields that hold the EC2 block: spec.awsEc2 (Gloo >= 1.0) and the legacy
// spec.upstreamSpec.awsEc2.
func fieldAwsEc2() fieldName       { return fieldName{"awsEc2", "aws_ec2"} }
func fieldUpstreamSpec() fieldName { return fieldName{"upstreamSpec", "upstream_spec"} }

// lookupField returns the value of f in m under either spelling, the JSON name winning as in
// Gloo; a null counts as absent.
func lookupField(m map[string]any, f fieldName) any {
	if v := m[f.json]; v != nil {
		return v
	}
	return m[f.proto]
}

// ec2Blocks returns the EC2 blocks of an Upstream's spec in both shapes (nil when absent). IsEC2
// and FromObject both use it, so they agree.
func ec2Blocks(spec map[string]any) (current, legacy any) {
	if spec == nil {
		return nil, nil
	}
	current = lookupField(spec, fieldAwsEc2())
	if us, ok := lookupField(spec, fieldUpstreamSpec()).(map[string]any); ok {
		legacy = lookupField(us, fieldAwsEc2())
	}
	return current, legacy
}

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
	spec, _ := obj["spec"].(map[string]any)
	current, legacy := ec2Blocks(spec)
	return current != nil || legacy != nil
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
	current, legacy := ec2Blocks(spec)
	if current == nil && legacy == nil {
		return nil, fmt.Errorf("decode upstream %s: %w", u.Key(), ErrNotEC2)
	}
	d := &decoder{}
	// Report the blocks written under both spellings.
	specPath := field.NewPath("spec")
	d.field(spec, fieldAwsEc2(), specPath)
	if us, ok := d.field(spec, fieldUpstreamSpec(), specPath).(map[string]any); ok {
		d.field(us, fieldAwsEc2(), specPath.Child(fieldUpstreamSpec().json))
	}
	if current != nil {
		u.Shape = ShapeV1
		u.Spec = d.spec(current, ShapeV1.Path())
		if legacy != nil {
			d.add(compareShapes(u.Spec, legacy))
		}
	} else {
		u.Shape = ShapeLegacy
		u.Spec = d.spec(legacy, ShapeLegacy.Path())
	}
	u.decoded = d.findings
	return u, nil
}

// compareShapes decodes the legacy block too and reports whether both shapes say the same.
func compareShapes(current Spec, legacy any) Finding {
	d := &decoder{}
	ls := d.spec(legacy, ShapeLegacy.Path())
	path := ShapeLegacy.Path()
	if len(d.findings.kept) == 0 && reflect.DeepEqual(normalizeSpec(current), normalizeSpec(ls)) {
		return newFinding(codes.BothShapesSame, path, field.ErrorTypeDuplicate, field.OmitValueType{})
	}
	return newFinding(codes.BothShapesDiffer, path, field.ErrorTypeForbidden, nil)
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

// wrongType reports v at p as not of type want; example shows the field written right.
func (d *decoder) wrongType(p *field.Path, v any, want, example string) {
	d.add(newFinding(codes.WrongType, p, field.ErrorTypeTypeInvalid, safeBadValue(v), want, describeValue(v), example))
}

// field returns the value of f in m (see lookupField) and reports a field written under both
// spellings: an error when the two values differ, a warning when they are the same.
func (d *decoder) field(m map[string]any, f fieldName, p *field.Path) any {
	v := lookupField(m, f)
	if f.proto == f.json {
		return v
	}
	jv, pv := m[f.json], m[f.proto]
	if jv == nil || pv == nil {
		return v
	}
	if sameValue(jv, pv) {
		d.add(newFinding(codes.FieldSpeltTwiceSame, p.Child(f.proto), field.ErrorTypeDuplicate, field.OmitValueType{}, f.json, f.proto))
		return v
	}
	d.add(newFinding(codes.FieldSpeltTwiceDiffer, p.Child(f.proto), field.ErrorTypeDuplicate, field.OmitValueType{}, f.json, f.proto))
	return v
}

// sameValue reports whether two decoded JSON values are equal, numbers compared by value whatever
// their Go type.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !sameValue(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case string, bool, nil:
		return a == b
	}
	an, aNum, _ := toNumber(a)
	bn, bNum, _ := toNumber(b)
	return aNum && bNum && an == bn
}

func (d *decoder) unknownFields(m map[string]any, known []fieldName, p *field.Path) {
	var unknown []string
	for k := range m {
		if !isKnown(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return
	}
	sort.Strings(unknown)
	names := make([]string, 0, 2*len(known))
	list := make([]string, 0, len(known))
	for _, f := range known {
		names = append(names, f.json)
		if f.proto != f.json {
			names = append(names, f.proto)
		}
		list = append(list, f.json)
	}
	for _, k := range unknown {
		suggestion := ""
		if s := suggest(k, names); s != "" {
			suggestion = fmt.Sprintf(" (did you mean %q?)", s)
		}
		d.add(newFinding(codes.UnknownField, p.Child(truncate(k, 64)), field.ErrorTypeNotSupported, field.OmitValueType{},
			quoteShort(k), strings.Join(list, ", "), suggestion))
	}
}

func isKnown(known []fieldName, k string) bool {
	for _, f := range known {
		if k == f.json || k == f.proto {
			return true
		}
	}
	return false
}

func (d *decoder) spec(v any, p *field.Path) Spec {
	var s Spec
	m, ok := v.(map[string]any)
	if !ok {
		d.wrongType(p, v, "an object with region, secretRef, roleArn, filters, publicIp, port", "awsEc2: {region: us-east-1, ...}")
		return s
	}
	d.unknownFields(m, awsEc2Fields(), p)
	s.Region = d.str(m, fieldName{"region", "region"}, p)
	s.RoleARN = d.str(m, fieldName{"roleArn", "role_arn"}, p)
	s.PublicIP = d.boolean(m, fieldName{"publicIp", "public_ip"}, p)
	s.Port = d.port(m, p)
	s.SecretRef = d.secretRef(m, p)
	s.Filters = d.filters(m, p)
	return s
}

func (d *decoder) str(m map[string]any, f fieldName, p *field.Path) string {
	v := d.field(m, f, p)
	if v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.wrongType(p.Child(f.json), v, "a string", fmt.Sprintf("%s: \"%s\"", f.json, plainString(v)))
		return ""
	}
	return s
}

func (d *decoder) boolean(m map[string]any, f fieldName, p *field.Path) bool {
	v := d.field(m, f, p)
	if v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		d.wrongType(p.Child(f.json), v, "a boolean", fmt.Sprintf("%s: true or %s: false, without quotes", f.json, f.json))
		return false
	}
	return b
}

func (d *decoder) port(m map[string]any, p *field.Path) uint32 {
	v := d.field(m, fieldName{"port", "port"}, p)
	if v == nil {
		return 0
	}
	pp := p.Child("port")
	n, isNum, integral := toNumber(v)
	switch {
	case !isNum:
		d.wrongType(pp, v, "an integer", fmt.Sprintf("port: %s, without quotes", plainString(v)))
		return 0
	case !integral || n < 0 || n > math.MaxUint32:
		d.add(newFinding(codes.PortRange, pp, field.ErrorTypeInvalid, safeBadValue(v), plainString(v)))
		return 0
	case n == 0:
		d.add(newFinding(codes.PortZero, pp, field.ErrorTypeInvalid, int64(0)))
		return 0
	}
	return uint32(n)
}

func (d *decoder) secretRef(m map[string]any, p *field.Path) *SecretRef {
	v := d.field(m, fieldName{"secretRef", "secret_ref"}, p)
	if v == nil {
		return nil
	}
	pp := p.Child("secretRef")
	sm, ok := v.(map[string]any)
	if !ok {
		d.wrongType(pp, v, "an object {name, namespace}", "secretRef: {name: NAME, namespace: NS}")
		return &SecretRef{}
	}
	d.unknownFields(sm, secretRefFields(), pp)
	return &SecretRef{Name: d.str(sm, fieldName{"name", "name"}, pp), Namespace: d.str(sm, fieldName{"namespace", "namespace"}, pp)}
}

func (d *decoder) filters(m map[string]any, p *field.Path) []Filter {
	v := d.field(m, fieldName{"filters", "filters"}, p)
	if v == nil {
		return nil
	}
	pp := p.Child("filters")
	list, ok := v.([]any)
	if !ok {
		d.wrongType(pp, v, "a list of filters", "list items `- key: K` or `- kvPair: {key: K, value: V}`")
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
		d.wrongType(p, v, "an object with key or kvPair", "`- key: K` or `- kvPair: {key: K, value: V}`")
		return f
	}
	d.unknownFields(fm, filterFields(), p)
	if kv := d.field(fm, fieldName{"key", "key"}, p); kv != nil {
		if s, ok := kv.(string); ok {
			f.Key = &s
		} else {
			d.wrongType(p.Child("key"), kv, "a string (the tag key)", fmt.Sprintf("key: \"%s\"", plainString(kv)))
			empty := ""
			f.Key = &empty
		}
	}
	if pv := d.field(fm, fieldName{"kvPair", "kv_pair"}, p); pv != nil {
		pp := p.Child("kvPair")
		pm, ok := pv.(map[string]any)
		if !ok {
			d.wrongType(pp, pv, "an object {key, value}", "kvPair: {key: K, value: V}")
			f.KVPair = &KVPair{}
		} else {
			d.unknownFields(pm, kvPairFields(), pp)
			f.KVPair = &KVPair{Key: d.str(pm, fieldName{"key", "key"}, pp), Value: d.str(pm, fieldName{"value", "value"}, pp)}
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
