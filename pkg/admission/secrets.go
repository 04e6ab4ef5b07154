package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// SecretReader reads the Gloo AWS secrets Upstreams reference.
type SecretReader interface {
	// Secret returns the Secret, or (nil, nil) when it does not exist. It returns
	// *SecretNotWatchedError for a namespace the reader does not cover.
	Secret(ctx context.Context, nn types.NamespacedName) (*corev1.Secret, error)
}

// SecretNotWatchedError says the webhook does not read Secrets in that namespace
// (--secret-namespaces).
type SecretNotWatchedError struct {
	Namespace  string
	Namespaces []string
}

func (e *SecretNotWatchedError) Error() string {
	return fmt.Sprintf("ec2guard reads Secrets only in namespaces %v, not in %q", e.Namespaces, e.Namespace)
}

// CachedSecrets reads Secrets through a controller-runtime reader: the manager's client, backed by
// an informer cache scoped to Namespaces (empty: every namespace).
type CachedSecrets struct {
	Reader     client.Reader
	Namespaces []string
}

var _ SecretReader = (*CachedSecrets)(nil)

// Secret implements SecretReader.
func (c *CachedSecrets) Secret(ctx context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
	if len(c.Namespaces) > 0 && !slices.Contains(c.Namespaces, nn.Namespace) {
		return nil, &SecretNotWatchedError{Namespace: nn.Namespace, Namespaces: c.Namespaces}
	}
	var s corev1.Secret
	if err := c.Reader.Get(ctx, nn, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read secret %s: %w", nn, err)
	}
	return &s, nil
}

// StripSecret is the informer transform for Secrets: it keeps only what ec2guard reads — identity,
// resourceVersion, labels, the annotations ec2guard reads (ec2.SecretAnnotationKeys) and the Gloo AWS
// data keys — so the cache holds no other secret material and
// less memory.
func StripSecret(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil // tombstones and other types pass through
	}
	out := &corev1.Secret{
		TypeMeta: s.TypeMeta,
		Type:     s.Type,
	}
	out.Name, out.Namespace, out.UID, out.ResourceVersion = s.Name, s.Namespace, s.UID, s.ResourceVersion
	out.CreationTimestamp, out.DeletionTimestamp = s.CreationTimestamp, s.DeletionTimestamp
	out.Labels = s.Labels
	for _, k := range ec2.SecretAnnotationKeys() {
		if v, ok := s.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[k] = v
		}
	}
	for _, k := range []string{ec2.SecretKeyAccessKeyID, ec2.SecretKeySecretAccessKey, ec2.SecretKeySessionToken} {
		if v, ok := s.Data[k]; ok {
			if out.Data == nil {
				out.Data = map[string][]byte{}
			}
			out.Data[k] = v
		}
	}
	return out, nil
}

// isNotWatched reports whether err is a *SecretNotWatchedError.
func isNotWatched(err error) (*SecretNotWatchedError, bool) {
	var nw *SecretNotWatchedError
	ok := errors.As(err, &nw)
	return nw, ok
}
