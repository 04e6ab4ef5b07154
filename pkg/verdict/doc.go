// Package verdict is ec2guard's one IAM verdict pipeline: for an EC2 Upstream and the IAM result of
// its credentials it gives the principal, the decision for ec2:DescribeInstances in the Upstream's
// region with the source that decided, the consistency class, and the coded IAM problems
// (EC2G501-506, EC2G601 and the IAM engine's findings).
//
// The three front ends call Of with their own way of getting the IAM result (a Source):
//   - the admission webhook (pkg/admission): its IAM evaluator over the Upstream's credentials,
//     behind the access gate, with the local, aws-simulator and dry-run sources;
//   - the discoverer's audit (pkg/discovery): the refresh's own listing and the local engine;
//   - the CLI (cmd/ec2guard check --policy): the local engine over policy files.
//
// Each keeps only what is its own: the admission response and enforcement, the report and status
// writing, the CLI's printing. This package imports neither pkg/admission nor pkg/discovery.
package verdict
