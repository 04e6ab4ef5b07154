package webhook_test

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ec2guard/ec2guard/pkg/admission"
)

// timeoutSeconds of both webhooks: above --iam-deadline (2s) with room for the rest of the work.
// With failurePolicy Fail a webhook that took longer would make the apply fail.
const timeoutSeconds = 5

func upstreamRules() []admissionregistrationv1.RuleWithOperations {
	return []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups:   []string{"gloo.solo.io"},
			APIVersions: []string{"v1"},
			Resources:   []string{"upstreams"},
			Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
		},
	}}
}

// clientConfig points at the webhook Service of a real install; envtest rewrites it to the local
// webhook server's URL.
func clientConfig(path string) admissionregistrationv1.WebhookClientConfig {
	return admissionregistrationv1.WebhookClientConfig{
		Service: &admissionregistrationv1.ServiceReference{Namespace: "ec2guard-system", Name: "ec2guard-webhook", Path: ptr.To(path)},
	}
}

func mutatingWebhook() *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "ec2guard"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "mutate-upstream.ec2guard.io",
			ClientConfig:            clientConfig(admission.MutatePath),
			Rules:                   upstreamRules(),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](timeoutSeconds),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}},
	}
}

func validatingWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "ec2guard"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "validate-upstream.ec2guard.io",
			ClientConfig:            clientConfig(admission.ValidatePath),
			Rules:                   upstreamRules(),
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](timeoutSeconds),
		}},
	}
}
