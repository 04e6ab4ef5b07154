package discovery

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// CacheOptions are the manager cache options the discoverer needs: Services and EndpointSlices
// only where the discoverer manages them (label selectors), Secrets with their data kept only for
// Gloo AWS secrets (others are cached without data), managed fields dropped everywhere.
func CacheOptions() cache.Options {
	return cache.Options{
		DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Service{}: {
				Label:     labels.SelectorFromSet(labels.Set{LabelServiceManagedBy: ManagedBy}),
				Transform: cache.TransformStripManagedFields(),
			},
			&discoveryv1.EndpointSlice{}: {
				Label:     labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: ManagedBy}),
				Transform: cache.TransformStripManagedFields(),
			},
			&corev1.Secret{}: {Transform: KeepOnlyAWSSecretData},
		},
	}
}

// KeepOnlyAWSSecretData is a cache transform for Secrets: it drops managed fields, and the data
// of every Secret that is not a Gloo AWS secret (no aws_access_key_id key), so the discoverer
// holds no other credentials in memory.
func KeepOnlyAWSSecretData(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	s.ManagedFields = nil
	if _, aws := s.Data[ec2.SecretKeyAccessKeyID]; !aws {
		s.Data = nil
		s.StringData = nil
	}
	if s.Annotations != nil {
		delete(s.Annotations, corev1.LastAppliedConfigAnnotation)
	}
	return s, nil
}
