package admission

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AccessReviewer answers whether a user may read a Secret.
type AccessReviewer interface {
	// CanGetSecret reports whether user may `get` the Secret nn, with the authorizer's reason.
	CanGetSecret(ctx context.Context, user authenticationv1.UserInfo, nn types.NamespacedName) (allowed bool, reason string, err error)
}

// SubjectAccessReviewer asks the API server with a SubjectAccessReview (the webhook's service
// account needs `create` on subjectaccessreviews.authorization.k8s.io).
type SubjectAccessReviewer struct {
	Client client.Client
}

var _ AccessReviewer = (*SubjectAccessReviewer)(nil)

// CanGetSecret implements AccessReviewer.
func (r *SubjectAccessReviewer) CanGetSecret(ctx context.Context, user authenticationv1.UserInfo, nn types.NamespacedName) (bool, string, error) {
	sar := &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user.Username,
			UID:    user.UID,
			Groups: user.Groups,
			Extra:  extra(user.Extra),
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: nn.Namespace,
				Verb:      "get",
				Group:     "",
				Version:   "v1",
				Resource:  "secrets",
				Name:      nn.Name,
			},
		},
	}
	if err := r.Client.Create(ctx, sar); err != nil {
		return false, "", fmt.Errorf("SubjectAccessReview of get secret %s for user %q: %w", nn, user.Username, err)
	}
	reason := sar.Status.Reason
	if sar.Status.EvaluationError != "" {
		reason = fmt.Sprintf("%s (evaluation error: %s)", reason, sar.Status.EvaluationError)
	}
	return sar.Status.Allowed && !sar.Status.Denied, reason, nil
}

func extra(in map[string]authenticationv1.ExtraValue) map[string]authorizationv1.ExtraValue {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]authorizationv1.ExtraValue, len(in))
	for k, v := range in {
		out[k] = authorizationv1.ExtraValue(v)
	}
	return out
}
