package discovery

import "github.com/ec2guard/ec2guard/pkg/ec2"

// Codes of the discoverer's own refusals and failures (EC2G7xx). The spec and secret rules keep
// pkg/ec2's codes (an invalid Upstream's annotation lists them). docs/discoverer.md lists these.
const (
	// CodeSecretNotShared: the Upstream names a Secret in another namespace that does not list
	// the Upstream's namespace in its ec2guard.io/allowed-namespaces annotation (or does not
	// exist), so the discoverer does not use it on the Upstream's behalf.
	CodeSecretNotShared ec2.Code = "EC2G701"
	// CodePodIdentityNotAllowed: the Upstream has no secretRef, so it would use the discoverer's
	// own AWS identity, and its namespace is not in --pod-identity-namespaces.
	CodePodIdentityNotAllowed ec2.Code = "EC2G702"
	// CodePublishFailed: the Upstream's Service or EndpointSlices could not be written; it is
	// retried with a per-Upstream backoff while the rest of its group is published.
	CodePublishFailed ec2.Code = "EC2G703"
	// CodeGeneratedNamespaceRefused: discover-from-tags did not generate an Upstream because the
	// instance's namespace is not in --discover-target-namespaces, or the source secret may not
	// be used from it (logged and counted; there is no Upstream to annotate).
	CodeGeneratedNamespaceRefused ec2.Code = "EC2G704"
	// CodeGeneratedCapReached: discover-from-tags wants more Upstreams than
	// --discover-max-upstreams for one credential group; the rest are not generated.
	CodeGeneratedCapReached ec2.Code = "EC2G705"
)
