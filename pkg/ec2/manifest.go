package ec2

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// MaxManifestBytes bounds one manifest file or stream read by ReadManifests.
const MaxManifestBytes = 16 << 20

// ManifestError is a problem with a manifest: the file, the line, the field when it is about one, and
// what is wrong.
type ManifestError struct {
	File    string
	Line    int    // 1-based line in File; 0 when unknown
	Doc     int    // 1-based document index in File; 0 when unknown
	Field   string // field path inside the object (e.g. spec.awsEc2.regoin), when it is about a field
	Message string
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Doc > 0 {
		fmt.Fprintf(&b, ": document %d", e.Doc)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// ManifestObject is one Kubernetes object of a manifest stream: a document, or an item of a List
// document (kind ending in "List" with items).
type ManifestObject struct {
	File   string
	Doc    int            // 1-based index among the file's non-empty documents
	Item   int            // 1-based index in a List's items; 0 when not in a List
	Line   int            // line of the object's first field
	Object map[string]any // as the API server would see it: YAML decoded like kubectl does, then JSON

	node   *yamlv3.Node // the object's mapping node, for LineOf
	offset int          // added to node lines to get file lines
}

// APIVersion and Kind return the object's type, empty when absent or not a string.
func (o *ManifestObject) APIVersion() string { s, _ := o.Object["apiVersion"].(string); return s }

// Kind returns the object's kind, empty when absent or not a string.
func (o *ManifestObject) Kind() string { s, _ := o.Object["kind"].(string); return s }

// LineOf returns the file line of the field at path (a field.Path string such as
// "spec.awsEc2.filters[0].kvPair.key", relative to the object), or of the deepest part of it that
// exists, or the object's own line.
func (o *ManifestObject) LineOf(path string) int {
	if o.node == nil {
		return o.Line
	}
	line := o.node.Line
	n := o.node
	for _, seg := range splitFieldPath(path) {
		next, at := childNode(n, seg)
		if next == nil {
			break
		}
		n, line = next, at
	}
	return line + o.offset
}

// Upstream decodes the object as an EC2 Upstream with FromObject. It returns ErrNotUpstream and
// ErrNotEC2 as FromObject does. A field inside awsEc2 (or a filter, kvPair or secretRef) that Gloo does
// not know is an input error here, a *ManifestError naming its line and field: in a manifest it is a
// typo the author can fix before anything is applied.
func (o *ManifestObject) Upstream() (*Upstream, error) {
	u, err := FromObject(o.Object)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, f := range u.decoded.kept {
		if f.Code != codes.UnknownField {
			continue
		}
		msg := fmt.Sprintf("%s %s", f.Code, f.Message)
		if f.Fix != "" {
			msg += "; " + f.Fix
		}
		errs = append(errs, &ManifestError{File: o.File, Line: o.LineOf(f.Field), Doc: o.Doc, Field: f.Field, Message: msg})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return u, nil
}

// ReadManifests reads at most MaxManifestBytes from r and decodes them with DecodeManifests.
func ReadManifests(name string, r io.Reader) ([]ManifestObject, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, &ManifestError{File: name, Message: fmt.Sprintf("read: %v", err)}
	}
	if len(data) > MaxManifestBytes {
		return nil, &ManifestError{File: name, Message: fmt.Sprintf("larger than %d MiB; split it", MaxManifestBytes>>20)}
	}
	return DecodeManifests(name, data)
}

// DecodeManifests splits a YAML or JSON stream into documents at "---" lines (as kubectl does),
// and decodes each strictly: a document that does not parse, a mapping with the same key twice, or a
// document that is not a mapping is a *ManifestError naming the file and line (and the field for a
// duplicate key). Documents with only comments or blanks, and null documents, are skipped. Values are
// decoded as kubectl would send them to the API server.
func DecodeManifests(name string, data []byte) ([]ManifestObject, error) {
	if len(data) > MaxManifestBytes {
		return nil, &ManifestError{File: name, Message: fmt.Sprintf("larger than %d MiB; split it", MaxManifestBytes>>20)}
	}
	chunks, err := splitChunks(data)
	if err != nil {
		return nil, &ManifestError{File: name, Message: err.Error()}
	}
	var out []ManifestObject
	doc := 0
	for _, c := range chunks {
		if c.first == 0 {
			continue // only comments and blanks
		}
		doc++
		objs, err := decodeChunk(name, doc, c)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// chunk is the text between two "---" lines.
type chunk struct {
	data  []byte
	start int // file line of the chunk's first line
	first int // file line of its first line that is not blank or a comment; 0 if none
}

func splitChunks(data []byte) ([]chunk, error) {
	var chunks []chunk
	cur := chunk{start: 1}
	var buf bytes.Buffer
	lineNo := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), MaxManifestBytes)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if isDocSeparator(line) {
			cur.data = append([]byte(nil), buf.Bytes()...)
			chunks = append(chunks, cur)
			buf.Reset()
			cur = chunk{start: lineNo + 1}
			continue
		}
		buf.WriteString(line)
		buf.WriteByte('\n')
		if t := strings.TrimSpace(line); cur.first == 0 && t != "" && !strings.HasPrefix(t, "#") {
			cur.first = lineNo
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", lineNo+1, err)
	}
	cur.data = buf.Bytes()
	return append(chunks, cur), nil
}

func isDocSeparator(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	rest := strings.TrimSpace(line[3:])
	return rest == "" || strings.HasPrefix(rest, "#")
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

// yamlErrorLine moves "line N" in a YAML parser's message (counted from the chunk's start) to file
// lines and returns the first such line.
func yamlErrorLine(msg string, start int) (string, int) {
	first := 0
	msg = yamlLineRe.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		if first == 0 {
			first = n + start - 1
		}
		return fmt.Sprintf("line %d", n+start-1)
	})
	return msg, first
}

func decodeChunk(name string, doc int, c chunk) ([]ManifestObject, error) {
	offset := c.start - 1
	fail := func(line int, field, msg string) error {
		return &ManifestError{File: name, Line: line, Doc: doc, Field: field, Message: msg}
	}
	// The values as kubectl decodes them (YAML 1.1 scalars), so the verdict is the API server's; its
	// syntax errors first, as kubectl would report them.
	j, err := yaml.YAMLToJSON(c.data)
	if err != nil {
		msg, line := yamlErrorLine(err.Error(), c.start)
		if line == 0 {
			line = c.first
		}
		return nil, fail(line, "", "not valid YAML: "+msg)
	}
	// The structure (lines, duplicate keys) from the YAML 1.2 node tree.
	var root yamlv3.Node
	dec := yamlv3.NewDecoder(bytes.NewReader(c.data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		msg, line := yamlErrorLine(err.Error(), c.start)
		if line == 0 {
			line = c.first
		}
		return nil, fail(line, "", "not valid YAML: "+msg)
	}
	var extra yamlv3.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fail(extra.Line+offset, "", "a second document without a --- line before it")
	}
	node := &root
	if node.Kind == yamlv3.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if err := checkDuplicateKeys(node, "", offset); err != nil {
		err.File, err.Doc = name, doc
		return nil, err
	}
	var v any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, &v); err != nil {
		return nil, fail(c.first, "", err.Error())
	}
	if v == nil {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok || node.Kind != yamlv3.MappingNode {
		return nil, fail(c.first, "", "not a Kubernetes object (a YAML mapping with apiVersion and kind)")
	}
	mo := ManifestObject{File: name, Doc: doc, Line: node.Line + offset, Object: obj, node: node, offset: offset}
	kind, _ := obj["kind"].(string)
	if !strings.HasSuffix(kind, "List") || obj["items"] == nil {
		return []ManifestObject{mo}, nil
	}
	items, ok := obj["items"].([]any)
	itemsNode, _ := childNode(node, "items")
	if !ok || itemsNode == nil || itemsNode.Kind != yamlv3.SequenceNode || len(itemsNode.Content) != len(items) {
		return nil, fail(mo.LineOf("items"), "items", kind+".items is not a list")
	}
	out := make([]ManifestObject, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		n := itemsNode.Content[i]
		if !ok || n.Kind != yamlv3.MappingNode {
			return nil, fail(n.Line+offset, fmt.Sprintf("items[%d]", i), "not an object")
		}
		out = append(out, ManifestObject{File: name, Doc: doc, Item: i + 1, Line: n.Line + offset, Object: m, node: n, offset: offset})
	}
	return out, nil
}

// checkDuplicateKeys reports the first mapping key written twice (aliases are not followed).
func checkDuplicateKeys(n *yamlv3.Node, path string, offset int) *ManifestError {
	switch n.Kind {
	case yamlv3.DocumentNode:
		for _, c := range n.Content {
			if err := checkDuplicateKeys(c, path, offset); err != nil {
				return err
			}
		}
	case yamlv3.SequenceNode:
		for i, c := range n.Content {
			if err := checkDuplicateKeys(c, fmt.Sprintf("%s[%d]", path, i), offset); err != nil {
				return err
			}
		}
	case yamlv3.MappingNode:
		seen := make(map[string]int, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yamlv3.ScalarNode || k.Tag == "!!merge" {
				continue
			}
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			if first, dup := seen[k.Value]; dup {
				return &ManifestError{Line: k.Line + offset, Field: child,
					Message: fmt.Sprintf("duplicate key %q (first at line %d): only one of the two would be used; remove one", k.Value, first+offset)}
			}
			seen[k.Value] = k.Line
			if err := checkDuplicateKeys(v, child, offset); err != nil {
				return err
			}
		}
	}
	return nil
}

// splitFieldPath splits "a.b[0].c[key]" into "a", "b", "[0]", "c", "[key]".
func splitFieldPath(p string) []string {
	var out []string
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return append(out, p)
			}
			out = append(out, p[:end+1])
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				return append(out, p)
			}
			out = append(out, p[:end])
			p = p[end:]
		}
	}
	return out
}

// childNode returns the node for one path segment (a key, "[index]" or "[key]") and the line to report
// for it: the key's line for a mapping entry, the element's line for a list element.
func childNode(n *yamlv3.Node, seg string) (*yamlv3.Node, int) {
	if n.Kind == yamlv3.SequenceNode && strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil, 0
		}
		return n.Content[i], n.Content[i].Line
	}
	if n.Kind != yamlv3.MappingNode {
		return nil, 0
	}
	key := strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]")
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1], n.Content[i].Line
		}
	}
	return nil, 0
}
