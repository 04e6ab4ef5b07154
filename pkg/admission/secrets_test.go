package admission

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

func TestCachedSecrets(t *testing.T) {
	c := fake.NewClientBuilder().WithObjects(testSecret()).Build()
	r := &CachedSecrets{Reader: c, Namespaces: []string{"default", "gloo-system"}}
	ctx := context.Background()

	s, err := r.Secret(ctx, types.NamespacedName{Namespace: "default", Name: "gloo-tag-group1"})
	if err != nil || s == nil || string(s.Data["aws_access_key_id"]) != testAccessKeyID {
		t.Fatalf("existing secret: %v, %v", s, err)
	}
	if s, err := r.Secret(ctx, types.NamespacedName{Namespace: "default", Name: "missing"}); s != nil || err != nil {
		t.Errorf("missing secret: %v, %v; want nil, nil", s, err)
	}
	_, err = r.Secret(ctx, types.NamespacedName{Namespace: "kube-system", Name: "x"})
	if nw, ok := isNotWatched(err); !ok || nw.Namespace != "kube-system" {
		t.Errorf("unwatched namespace: %v", err)
	}

	failing := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("cache not started")
		},
	}).Build()
	if _, err := (&CachedSecrets{Reader: failing}).Secret(ctx, types.NamespacedName{Namespace: "a", Name: "b"}); err == nil {
		t.Error("read error swallowed")
	}
}

func TestStripSecretKeepsOnlyAWSKeys(t *testing.T) {
	in := testSecret()
	in.Data["unrelated"] = []byte("other secret material")
	in.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	out, err := StripSecret(in)
	if err != nil {
		t.Fatal(err)
	}
	s := out.(*corev1.Secret)
	if len(s.Data) != 2 || s.Data["unrelated"] != nil || s.Annotations != nil {
		t.Errorf("stripped secret keeps %v / %v", s.Data, s.Annotations)
	}
	// The annotations the rules read are kept: the opt-in (access rule) and the dedicated-account
	// statement (consistency class).
	in.Annotations[ec2.AnnotationSecretAllowedNamespaces] = "team-a"
	in.Annotations[ec2.AnnotationSecretDedicatedAccount] = "true"
	out, _ = StripSecret(in)
	if ann := out.(*corev1.Secret).Annotations; len(ann) != 2 || ann[ec2.AnnotationSecretAllowedNamespaces] != "team-a" || ann[ec2.AnnotationSecretDedicatedAccount] != "true" {
		t.Errorf("stripped secret annotations %v, want only the opt-in and the dedicated-account statement", ann)
	}
	if s.UID != in.UID || s.ResourceVersion != in.ResourceVersion || s.Name != in.Name || s.Namespace != in.Namespace {
		t.Errorf("identity lost: %+v", s.ObjectMeta)
	}
	if other, _ := StripSecret("tombstone"); other != "tombstone" {
		t.Error("non-secret changed")
	}
}
