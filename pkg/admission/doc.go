// Package admission is ec2guard's admission webhook for gloo.solo.io/v1 Upstreams with an EC2 spec.
//
// Two handlers run on controller-runtime's webhook server:
//
//   - the mutating handler (/mutate-upstream) adds the annotations ec2guard.io/principal,
//     ec2guard.io/iam-decision, ec2guard.io/iam-source and ec2guard.io/consistency as a JSON patch;
//   - the validating handler (/validate-upstream) runs every check — spec and secret rules from
//     pkg/ec2, the cross-namespace secret access review, the IAM decision for ec2:DescribeInstances
//     (and sts:AssumeRole on roleArn) from pkg/policycheck and pkg/awsclients, the consistency
//     class — each under its enforcement action (deny, warn or off).
//
// Handlers are composed from small decorators (decorator_*.go): metrics, a fast filter that lets
// non-EC2 Upstreams through untouched, and the decoding of the Upstream into a typed handler. Each
// rule is one checkX function (checks.go) that returns Problems; every problem is counted by check,
// code and outcome (metrics.go). The IAM result is computed once per credentials identity, region
// and roleArn and shared by both handlers through a TTL cache whose concurrent callers share one
// fetch (iamcache.go); a caller never waits on AWS longer than the IAM deadline.
package admission
