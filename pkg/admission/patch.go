package admission

import (
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

// annotationPatch returns the JSON patch that sets the annotations want on the object obj (as the
// decorators decoded it) and changes nothing else: one `add` per annotation whose value differs, or
// one `add` of the whole map when the object has no annotations. It returns no operation when
// everything is in place.
func annotationPatch(obj map[string]any, want map[string]string) ([]jsonpatch.JsonPatchOperation, error) {
	var ann any
	switch meta := obj["metadata"].(type) {
	case nil:
	case map[string]any:
		ann = meta["annotations"]
	default:
		return nil, fmt.Errorf("read metadata.annotations of the object: metadata is a %T, not an object", meta)
	}
	if ann == nil {
		value := make(map[string]any, len(want))
		for k, v := range want {
			value[k] = v
		}
		return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/metadata/annotations", value)}, nil
	}
	have, ok := ann.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("read metadata.annotations of the object: a %T, not a map of strings", ann)
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
