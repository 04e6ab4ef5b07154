package discovery

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// refusal renders code c's refusal from its declaration.
func refusal(c codes.Code, args ...any) *discovered.Refusal {
	return &discovered.Refusal{Code: string(c), Message: c.Message(args...)}
}

// credentialUse decides whether the discoverer may use t's credentials on its behalf, with the
// rules the webhook applies (pkg/ec2.SecretUsableFrom): a secret of the Upstream's own namespace,
// or one whose ec2guard.io/allowed-namespaces annotation lists it; without a secretRef, the pod's
// own AWS identity only for namespaces in Options.PodIdentityNamespaces. It reads the secret's
// metadata from the cache; nil means allowed.
func (d *Discoverer) credentialUse(ctx context.Context, t *Target) *discovered.Refusal {
	ns := t.Upstream.Namespace
	ref, ok := t.Upstream.SecretName()
	if !ok {
		if d.opts.PodIdentityNamespaces.Allows(ns) {
			return nil
		}
		return refusal(codes.DiscoveryPodIdentityNotAllowed, ns)
	}
	if ref.Namespace == ns {
		return nil
	}
	s := &corev1.Secret{}
	err := d.deps.Reader.Get(ctx, ref, s)
	switch {
	case err == nil:
		if ec2.SecretUsableFrom(s.Namespace, s.Annotations, ns) {
			return nil
		}
		return refusal(codes.DiscoverySecretNotShared, ref, ns, fmt.Sprintf("is in another namespace and its %s annotation does not list namespace %s", ec2.AnnotationSecretAllowedNamespaces, ns))
	case apierrors.IsNotFound(err):
		return refusal(codes.DiscoverySecretNotShared, ref, ns, fmt.Sprintf("(in another namespace) does not exist, so it cannot allow namespace %s", ns))
	default:
		return refusal(codes.DiscoverySecretNotShared, ref, ns, fmt.Sprintf("(in another namespace) cannot be read to tell whether namespace %s may use it: %v", ns, err))
	}
}
