package imagebuild

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// ImagePin is what a release writes into one `<component>.image` of the chart's values.
type ImagePin struct {
	Repository string
	Tag        string
	Digest     string // sha256:...; the chart then renders repository@digest
}

// PinValues rewrites the values file at path so that, for every key of pins (webhook,
// discoverer), <key>.image.repository, .tag and .digest hold the pin. Only those three scalars
// change: comments, order and blank lines stay as they are.
func PinValues(path string, pins map[string]ImagePin) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("chart values: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return fmt.Errorf("chart values %s: %w", path, err)
	}
	lines := bytes.Split(src, []byte("\n"))
	keys := make([]string, 0, len(pins))
	for k := range pins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		pin := pins[key]
		for field, value := range map[string]string{"repository": pin.Repository, "tag": pin.Tag, "digest": pin.Digest} {
			n := lookup(&doc, key, "image", field)
			if n == nil || n.Kind != yaml.ScalarNode {
				return fmt.Errorf("chart values %s: %s.image.%s is missing or not a scalar", path, key, field)
			}
			if n.Line < 1 || n.Line > len(lines) || n.Column < 1 || n.Column > len(lines[n.Line-1])+1 {
				return fmt.Errorf("chart values %s: %s.image.%s: no source position", path, key, field)
			}
			line := lines[n.Line-1][:n.Column-1]
			repl := append(append([]byte{}, line...), strconv.Quote(value)...)
			if n.LineComment != "" {
				repl = append(append(repl, ' '), n.LineComment...)
			}
			lines[n.Line-1] = repl
		}
	}
	out := bytes.Join(lines, []byte("\n"))
	// The rewrite must mean exactly the pins.
	var check yaml.Node
	if err := yaml.Unmarshal(out, &check); err != nil {
		return fmt.Errorf("chart values %s after pinning: %w", path, err)
	}
	for _, key := range keys {
		pin := pins[key]
		for field, value := range map[string]string{"repository": pin.Repository, "tag": pin.Tag, "digest": pin.Digest} {
			if n := lookup(&check, key, "image", field); n == nil || n.Value != value {
				return fmt.Errorf("chart values %s: %s.image.%s did not take the value %q", path, key, field, value)
			}
		}
	}
	return os.WriteFile(path, out, 0o644)
}

// lookup follows mapping keys from a document node.
func lookup(n *yaml.Node, path ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	for _, k := range path {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}
