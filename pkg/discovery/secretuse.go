package discovery

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
// metadata from the cache, once per regroup (seen); nil means allowed.
func (d *Discoverer) credentialUse(ctx context.Context, t *Target, seen secretReads) *discovered.Refusal {
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
	s, err := seen.get(ctx, d.deps.Reader, ref)
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

// secretReads are one regroup's cache reads of the secrets that Upstreams name in other
// namespaces: one read per secret however many Upstreams name it, without a deep copy (only
// the metadata is looked at).
type secretReads map[types.NamespacedName]secretRead

type secretRead struct {
	secret *corev1.Secret
	err    error
}

func (m secretReads) get(ctx context.Context, r client.Reader, ref types.NamespacedName) (*corev1.Secret, error) {
	if got, ok := m[ref]; ok {
		return got.secret, got.err
	}
	s := &corev1.Secret{}
	err := r.Get(ctx, ref, s, client.UnsafeDisableDeepCopy)
	m[ref] = secretRead{secret: s, err: err}
	return s, err
}
