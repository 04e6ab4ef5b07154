package k8senv

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func validatingConfig(cc admissionregistrationv1.WebhookClientConfig) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "cfg"},
		Webhooks:   []admissionregistrationv1.ValidatingWebhook{{Name: "hook.example.com", ClientConfig: cc}},
	}
}

func TestCopyWebhooksRejectsConfigsEnvtestCannotRewrite(t *testing.T) {
	tests := map[string]struct {
		cc   admissionregistrationv1.WebhookClientConfig
		want string
	}{
		"url": {
			cc:   admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/x")},
			want: "Options.ValidatingWebhooks[0] (cfg).webhooks[0] (hook.example.com): clientConfig.service.path must be set",
		},
		"service without path": {
			cc:   admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Name: "s", Namespace: "n"}},
			want: "clientConfig.service.path must be set",
		},
		"service and url": {
			cc: admissionregistrationv1.WebhookClientConfig{
				Service: &admissionregistrationv1.ServiceReference{Name: "s", Namespace: "n", Path: ptr.To("/v")},
				URL:     ptr.To("https://127.0.0.1:1/x"),
			},
			want: "clientConfig.url must be empty",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := copyWebhooks([]*admissionregistrationv1.ValidatingWebhookConfiguration{validatingConfig(tc.cc)}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("nil mutating config", func(t *testing.T) {
		_, _, err := copyWebhooks(nil, []*admissionregistrationv1.MutatingWebhookConfiguration{nil})
		if err == nil || !strings.Contains(err.Error(), "Options.MutatingWebhooks[0] is nil") {
			t.Fatalf("err = %v, want it to name Options.MutatingWebhooks[0]", err)
		}
	})
}

func TestCopyWebhooksLeavesCallerObjectsAlone(t *testing.T) {
	orig := validatingConfig(admissionregistrationv1.WebhookClientConfig{
		Service: &admissionregistrationv1.ServiceReference{Name: "s", Namespace: "n", Path: ptr.To("/v")},
	})
	vs, _, err := copyWebhooks([]*admissionregistrationv1.ValidatingWebhookConfiguration{orig}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0] == orig {
		t.Fatalf("copyWebhooks returned %v, want one copy distinct from the input", vs)
	}
	vs[0].Webhooks[0].ClientConfig.Service = nil
	if orig.Webhooks[0].ClientConfig.Service == nil {
		t.Fatal("changing the copy changed the caller's configuration")
	}
}
