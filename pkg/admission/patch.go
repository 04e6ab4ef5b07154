package admission

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	jsonpatch "gomodules.xyz/jsonpatch/v2"
)

// The annotations the mutating webhook writes (docs/webhook.md, "Annotations": other tools read them).
const (
	AnnotationPrincipal   = "ec2guard.io/principal"
	AnnotationIAMDecision = "ec2guard.io/iam-decision"
	AnnotationIAMSource   = "ec2guard.io/iam-source"
	AnnotationConsistency = "ec2guard.io/consistency"
)

// annotationsFor renders an IAM result (nil when IAM could not be evaluated) and the consistency
// class as the four annotations. No value is ever a secret.
func annotationsFor(res *IAMResult, class string) map[string]string {
	out := map[string]string{
		AnnotationPrincipal:   PrincipalUnknown,
		AnnotationIAMDecision: DecisionUnknown,
		AnnotationIAMSource:   SourceNone,
		AnnotationConsistency: class,
	}
	if res != nil {
		if res.Principal != "" {
			out[AnnotationPrincipal] = res.Principal
		}
		out[AnnotationIAMDecision] = res.Decision
		out[AnnotationIAMSource] = res.Source
	}
	return out
}

// annotationPatch returns the JSON patch that sets the annotations want on the object raw (JSON)
// and changes nothing else: one `add` per annotation whose value differs, or one `add` of the whole
// map when the object has no annotations. It returns no operation when everything is in place.
func annotationPatch(raw []byte, want map[string]string) ([]jsonpatch.JsonPatchOperation, error) {
	var obj struct {
		Metadata struct {
			Annotations json.RawMessage `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("read metadata.annotations of the object: %w", err)
	}
	ann := obj.Metadata.Annotations
	if len(ann) == 0 || string(ann) == "null" {
		value := make(map[string]any, len(want))
		for k, v := range want {
			value[k] = v
		}
		return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/metadata/annotations", value)}, nil
	}
	var have map[string]any
	if err := json.Unmarshal(ann, &have); err != nil {
		return nil, fmt.Errorf("read metadata.annotations of the object: not a map of strings: %w", err)
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ops []jsonpatch.JsonPatchOperation
	for _, k := range keys {
		if cur, ok := have[k].(string); ok && cur == want[k] {
			continue
		}
		// "add" on an existing member replaces it (RFC 6902 4.1), so one op covers both cases.
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations/"+escapePointer(k), want[k]))
	}
	return ops, nil
}

// escapePointer escapes a JSON Pointer reference token (RFC 6901): "~" as "~0", "/" as "~1".
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// carriedAnnotations are the four annotations as the old object had them (unknown/none where it
// had none): a metadata-only UPDATE re-evaluates nothing and may not change what ec2guard wrote.
func carriedAnnotations(old map[string]string) map[string]string {
	out := annotationsFor(nil, ConsistencyUnknown)
	for k := range out {
		if v, ok := old[k]; ok {
			out[k] = v
		}
	}
	return out
}
