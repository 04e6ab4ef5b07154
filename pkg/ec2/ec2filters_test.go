package ec2

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// The conversion of tag filters to DescribeInstances filters lives here, in a test file: ec2guard
// lists running instances and matches them in memory (Matcher), and the property tests use this
// conversion, with a reference implementation of EC2's filter evaluation, to show that Matcher
// means what the same filters would mean to the EC2 API.

// EC2 filter names used by the conversion.
const (
	FilterInstanceState = "instance-state-name"
	FilterTagKey        = "tag-key"
	FilterTagPrefix     = "tag:"
	StateRunning        = "running"
)

// EscapeFilterValue escapes the characters EC2 treats specially in filter values — `*` (any
// sequence), `?` (any one character) and `\` (escape) — so the value matches only itself.
func EscapeFilterValue(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for _, r := range s {
		if r == '*' || r == '?' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// EC2Filters converts tag filters to DescribeInstances filters with the same meaning as Matcher:
//   - always instance-state-name=running;
//   - `key: K` -> tag-key=K, K escaped (the tag-key filter takes the key as a *value*, where `*`, `?`
//     and `\` are wildcards/escapes);
//   - `kvPair: {key: K, value: V}` -> tag:K=V, V escaped. K is part of the filter *name*: EC2
//     documents wildcards only for filter values, so K is sent as written.
//
// Exact duplicates are sent once. Every filter is its own EC2 filter (EC2 ANDs filters; several values
// in one filter would be ORed). It returns an error for a filter that does not set exactly one of key
// and kvPair (Validate reports those as EC2G101).
func EC2Filters(filters []Filter) ([]ec2types.Filter, error) {
	out := make([]ec2types.Filter, 0, len(filters)+1)
	out = append(out, ec2types.Filter{Name: aws.String(FilterInstanceState), Values: []string{StateRunning}})
	for i, f := range filters {
		if !f.wellFormed() {
			return nil, fmt.Errorf("filters[%d]: %s exactly one of key or kvPair must be set", i, codes.FilterKeyOrKVPair)
		}
		dup := false
		for _, g := range filters[:i] {
			if g.equal(f) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		if f.IsKV() {
			out = append(out, ec2types.Filter{Name: aws.String(FilterTagPrefix + f.KVPair.Key), Values: []string{EscapeFilterValue(f.KVPair.Value)}})
		} else {
			out = append(out, ec2types.Filter{Name: aws.String(FilterTagKey), Values: []string{EscapeFilterValue(*f.Key)}})
		}
	}
	return out, nil
}
