package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/util/yaml"
)

// Decode reads Reports from YAML or JSON: one or more documents, each a Report or a List (v1
// List, ReportList) of Reports. name names the input in errors.
func Decode(r io.Reader, name string) ([]Report, error) {
	dec := yaml.NewYAMLOrJSONDecoder(r, 4096)
	var out []Report
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		if len(strings.TrimSpace(string(raw))) == 0 || string(raw) == "null" {
			continue
		}
		rs, err := decodeDoc(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, doc, err)
		}
		out = append(out, rs...)
	}
}

type typeMeta struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

func decodeDoc(raw json.RawMessage) ([]Report, error) {
	var tm typeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("not an object: %w", err)
	}
	if strings.HasSuffix(tm.Kind, "List") {
		var out []Report
		for i, item := range tm.Items {
			rs, err := decodeDoc(item)
			if err != nil {
				return nil, fmt.Errorf("items[%d]: %w", i, err)
			}
			out = append(out, rs...)
		}
		return out, nil
	}
	if tm.APIVersion != reportAPIVersion || tm.Kind != reportKind {
		return nil, fmt.Errorf("apiVersion %q kind %q: want %s %s", tm.APIVersion, tm.Kind, reportAPIVersion, reportKind)
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return []Report{r}, nil
}
