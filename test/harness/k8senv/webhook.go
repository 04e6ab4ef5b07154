package k8senv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

const (
	webhookReadyTimeout = 30 * time.Second
	webhookPollInterval = 50 * time.Millisecond
	webhookDialTimeout  = 2 * time.Second
)

// WebhookServer is a controller-runtime webhook.Server serving on the host,
// port and certificate the API server was told about (Env.Webhook). It counts
// the requests each registered path receives.
type WebhookServer struct {
	server webhook.Server

	mu       sync.Mutex
	requests map[string]int
}

// ServeWebhooks starts a controller-runtime webhook.Server on e.Webhook with
// hooks registered (path -> handler, e.g. &webhook.Admission{Handler: h};
// the path is the one given in the webhook configuration's
// clientConfig.service.path), waits until it completes a TLS handshake with a
// client that trusts e.Webhook.CAData, and stops it in t.Cleanup.
func (e *Env) ServeWebhooks(t testing.TB, hooks map[string]http.Handler) *WebhookServer {
	t.Helper()
	srv := &WebhookServer{
		server: webhook.NewServer(webhook.Options{
			Host:    e.Webhook.Host,
			Port:    e.Webhook.Port,
			CertDir: e.Webhook.CertDir,
		}),
		requests: map[string]int{},
	}
	for path, h := range hooks {
		srv.Register(path, h)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	var startErr error // written before stopped is closed
	go func() {
		defer close(stopped)
		startErr = srv.server.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
		if startErr != nil {
			t.Errorf("k8senv: webhook server: %v", startErr)
		}
	})

	if err := waitForTLS(ctx, e.Webhook, stopped); err != nil {
		t.Fatalf("k8senv: webhook server on %s:%d: %v", e.Webhook.Host, e.Webhook.Port, err)
	}
	return srv
}

// Register adds a handler at path; it may be called after the server started.
// It panics (from controller-runtime) when path is already registered.
func (s *WebhookServer) Register(path string, h http.Handler) {
	s.server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[path]++
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
}

// Requests returns how many requests the handler at path has received.
func (s *WebhookServer) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// WaitForWebhook returns once the API server routes requests through the
// webhook at path of srv. The API server picks up a new webhook configuration
// asynchronously, so a test should call this before relying on admission.
// It creates probe with server-side dry run (nothing is stored) until the
// handler at path has seen a request; the webhook must therefore match CREATE
// of probe's kind and declare sideEffects None or NoneOnDryRun.
func (e *Env) WaitForWebhook(ctx context.Context, srv *WebhookServer, path string, probe client.Object) error {
	before := srv.Requests(path)
	var lastErr error
	err := wait.PollUntilContextTimeout(ctx, webhookPollInterval, webhookReadyTimeout, true, func(ctx context.Context) (bool, error) {
		obj, ok := probe.DeepCopyObject().(client.Object)
		if !ok {
			return false, fmt.Errorf("probe %T does not deep-copy to a client.Object", probe)
		}
		// A denial is expected for some probes; only whether the handler was called matters.
		lastErr = e.Client.Create(ctx, obj, client.DryRunAll)
		return srv.Requests(path) > before, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the API server to call webhook %s (last dry-run create: %v): %w", path, lastErr, err)
	}
	return nil
}

// waitForTLS polls until a TLS handshake with the server succeeds, verifying
// its certificate against ws.CAData, or the server stopped (stopped closed).
func waitForTLS(ctx context.Context, ws WebhookServing, stopped <-chan struct{}) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ws.CAData) {
		return errors.New("webhook CA data from envtest holds no PEM certificate")
	}
	addr := net.JoinHostPort(ws.Host, strconv.Itoa(ws.Port))
	cfg := &tls.Config{RootCAs: pool, ServerName: ws.Host, MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(ctx, webhookReadyTimeout)
	defer cancel()
	ticker := time.NewTicker(webhookPollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: webhookDialTimeout}, Config: cfg}
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		lastErr = err
		select {
		case <-stopped:
			return fmt.Errorf("server stopped before serving (last dial error: %v)", lastErr)
		case <-ctx.Done():
			return fmt.Errorf("not serving TLS (last error: %v): %w", lastErr, ctx.Err())
		case <-ticker.C:
		}
	}
}
