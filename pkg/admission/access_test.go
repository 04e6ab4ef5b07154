package admission

import (
	"context"
	"errors"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestSubjectAccessReviewer(t *testing.T) {
	var asked *authorizationv1.SubjectAccessReview
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			sar := obj.(*authorizationv1.SubjectAccessReview)
			asked = sar.DeepCopy()
			sar.Status.Allowed = sar.Spec.User == "bob"
			sar.Status.Reason = "RBAC"
			return nil
		},
	}).Build()
	r := &SubjectAccessReviewer{Client: c}
	user := authenticationv1.UserInfo{Username: "alice", UID: "u1", Groups: []string{"devs"}, Extra: map[string]authenticationv1.ExtraValue{"scope": {"x"}}}
	nn := types.NamespacedName{Namespace: "default", Name: "gloo-tag-group1"}

	allowed, reason, err := r.CanGetSecret(context.Background(), user, nn)
	if err != nil || allowed || reason != "RBAC" {
		t.Fatalf("alice: %v %q %v", allowed, reason, err)
	}
	ra := asked.Spec.ResourceAttributes
	if asked.Spec.User != "alice" || asked.Spec.UID != "u1" || len(asked.Spec.Groups) != 1 || asked.Spec.Extra["scope"][0] != "x" ||
		ra.Verb != "get" || ra.Resource != "secrets" || ra.Group != "" || ra.Namespace != "default" || ra.Name != "gloo-tag-group1" {
		t.Errorf("review asked %+v / %+v", asked.Spec, ra)
	}
	user.Username = "bob"
	if allowed, _, _ := r.CanGetSecret(context.Background(), user, nn); !allowed {
		t.Error("bob denied")
	}

	failing := &SubjectAccessReviewer{Client: fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return errors.New("forbidden")
		},
	}).Build()}
	if _, _, err := failing.CanGetSecret(context.Background(), user, nn); err == nil {
		t.Error("API error swallowed")
	}
}
