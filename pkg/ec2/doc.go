// Package ec2 is the EC2 Upstream model shared by the webhook, the discoverer and the CLI: decoding
// Gloo Upstreams in both shapes (spec.awsEc2 and legacy spec.upstreamSpec.awsEc2), the validation
// rules with their stable codes (docs/codes.md), the in-memory filter matcher (with the semantics of
// EC2's own tag filters), and the Gloo AWS secret model.
//
// Typical use:
//
//	u, err := ec2.DecodeJSON(raw)         // or FromUnstructured, DecodeYAML
//	if errors.Is(err, ec2.ErrNotEC2) {     // not an EC2 Upstream: leave it alone
//	    ...
//	}
//	errs, warnings := u.Validate()         // field.ErrorList, Findings
//	errs, warnings = u.ValidateContext(ctx) // the same, stopping when ctx ends
//	m, _ := u.Spec.Matcher()               // once per Upstream; m.Match(tags) per instance
//
// Every finding message starts with its code, e.g.
// `EC2G101 spec.awsEc2.filters[1]: exactly one of key or kvPair must be set, ...`.
package ec2
