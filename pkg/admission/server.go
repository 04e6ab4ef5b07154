package admission

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// Health and readiness check names.
const (
	CheckNamePing        = "ping"
	CheckNameWebhookTLS  = "webhook-tls"
	CheckNameSecretCache = "secret-cache"
)

// Register serves the handlers on mgr's webhook server (which reloads its serving certificate from
// disk when it changes) and adds the probes: /healthz answers while the process runs; /readyz
// passes only once the Secret cache has synced and the webhook's TLS listener accepts connections.
// The Secret informer is created here, so it starts and syncs with the manager rather than on the
// first admission request.
func Register(ctx context.Context, mgr manager.Manager, h *Handlers) error {
	srv := mgr.GetWebhookServer()
	srv.Register(ValidatePath, &webhook.Admission{Handler: h.Validate, LogConstructor: requestLogConstructor})
	srv.Register(MutatePath, &webhook.Admission{Handler: h.Mutate, LogConstructor: requestLogConstructor})
	if err := mgr.AddHealthzCheck(CheckNamePing, healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck(CheckNameWebhookTLS, srv.StartedChecker()); err != nil {
		return fmt.Errorf("add readiness check %s: %w", CheckNameWebhookTLS, err)
	}
	if err := mgr.AddReadyzCheck(CheckNameSecretCache, CacheSyncedChecker(mgr.GetCache(), time.Second)); err != nil {
		return fmt.Errorf("add readiness check %s: %w", CheckNameSecretCache, err)
	}
	if _, err := mgr.GetCache().GetInformer(ctx, &corev1.Secret{}); err != nil {
		return fmt.Errorf("create the Secret informer: %w", err)
	}
	return nil
}

// CountTLSHandshakes is a webhook server TLS option (webhook.Options.TLSOpts) that counts every
// completed handshake in MetricTLSHandshakes. The API server opens a connection, and pays a full
// handshake on both sides, whenever it has no idle one to the webhook: the count per admission
// request shows how well connections are reused.
func CountTLSHandshakes(m *Metrics) func(*tls.Config) {
	return func(c *tls.Config) {
		verify := c.VerifyConnection
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if verify != nil {
				if err := verify(cs); err != nil {
					return err
				}
			}
			m.TLSHandshake(cs.DidResume, cs.NegotiatedProtocol)
			return nil
		}
	}
}
