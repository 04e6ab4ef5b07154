package discovery

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKeepOnlyAWSSecretData(t *testing.T) {
	awsSecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "aws", Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{...}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Data: map[string][]byte{"aws_access_key_id": []byte("AKIAIOSFODNN7EXAMPLE"), "aws_secret_access_key": []byte("x")},
	}
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tls"}, Data: map[string][]byte{"tls.key": []byte("k")}}
	out, err := KeepOnlyAWSSecretData(awsSecret)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*corev1.Secret)
	if len(s.Data) != 2 || s.ManagedFields != nil || s.Annotations[corev1.LastAppliedConfigAnnotation] != "" {
		t.Fatalf("AWS secret after transform: %+v", s)
	}
	out, _ = KeepOnlyAWSSecretData(other)
	if out.(*corev1.Secret).Data != nil {
		t.Fatal("a non-AWS secret kept its data in the cache")
	}
	if o, _ := KeepOnlyAWSSecretData("not a secret"); o != "not a secret" {
		t.Fatal("non-secrets must pass through")
	}
	if len(CacheOptions().ByObject) != 3 {
		t.Fatal("cache options must restrict services, endpointslices and secrets")
	}
}
