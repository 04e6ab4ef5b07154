package certrotation

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Defaults of the self-managed mode (the cert-controller library's, shorter for the server
// certificate so that rotation is exercised well before anything expires).
const (
	DefaultCAValidity            = 10 * 365 * 24 * time.Hour
	DefaultServerValidity        = 365 * 24 * time.Hour
	DefaultLookahead             = 90 * 24 * time.Hour
	DefaultRotationCheckInterval = 12 * time.Hour
)

// Options configure the self-managed certificate mode.
type Options struct {
	// Secret holds the CA (ca.crt, ca.key) and the serving certificate (CertName, KeyName); it must
	// exist (the chart creates it empty) and be mounted at CertDir.
	Secret types.NamespacedName
	// WebhookConfiguration names the ValidatingWebhookConfiguration and the
	// MutatingWebhookConfiguration whose caBundle is kept equal to the CA.
	WebhookConfiguration string
	// DNSName is the Service name the API server calls (<service>.<namespace>.svc); ExtraDNSNames
	// are also in the certificate.
	DNSName       string
	ExtraDNSNames []string
	CertDir       string
	CertName      string
	KeyName       string
	// CAValidity and ServerValidity are the lifetimes of new certificates; a certificate is
	// renewed once it would be invalid Lookahead from now, checked every CheckInterval.
	CAValidity     time.Duration
	ServerValidity time.Duration
	Lookahead      time.Duration
	CheckInterval  time.Duration
}

// Validate names the option that is wrong.
func (o Options) Validate() error {
	var errs []error
	if o.Secret.Namespace == "" || o.Secret.Name == "" {
		errs = append(errs, errors.New("the certificate Secret needs a namespace and a name"))
	}
	if o.WebhookConfiguration == "" {
		errs = append(errs, errors.New("the webhook configurations to inject the CA into need a name"))
	}
	if o.DNSName == "" {
		errs = append(errs, errors.New("the certificate needs the Service's DNS name"))
	}
	for name, d := range map[string]time.Duration{"CA validity": o.CAValidity, "server validity": o.ServerValidity, "lookahead": o.Lookahead, "check interval": o.CheckInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %s: must be positive", name, d))
		}
	}
	if o.Lookahead >= o.ServerValidity {
		errs = append(errs, fmt.Errorf("lookahead %s must be shorter than the server validity %s, or every check renews the certificate", o.Lookahead, o.ServerValidity))
	}
	if o.ServerValidity > o.CAValidity {
		errs = append(errs, fmt.Errorf("server validity %s must not exceed the CA validity %s", o.ServerValidity, o.CAValidity))
	}
	return errors.Join(errs...)
}

// AddRotator adds github.com/open-policy-agent/cert-controller's rotator to mgr: the elected
// leader among the webhook replicas provisions the CA and the serving certificate in the Secret,
// renews them before they expire and keeps the caBundle of both webhook configurations equal to
// the CA. Every replica serves whatever certificate the mounted Secret holds (see LazyCertificate).
// mgr must run leader election.
func AddRotator(mgr manager.Manager, o Options) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("self-managed certificates: %w", err)
	}
	cr := &rotator.CertRotator{
		SecretKey:              o.Secret,
		CertDir:                o.CertDir,
		CertName:               o.CertName,
		KeyName:                o.KeyName,
		CAName:                 "ec2guard-webhook-ca",
		CAOrganization:         "ec2guard",
		DNSName:                o.DNSName,
		ExtraDNSNames:          o.ExtraDNSNames,
		IsReady:                make(chan struct{}),
		RequireLeaderElection:  true,
		CaCertDuration:         o.CAValidity,
		ServerCertDuration:     o.ServerValidity,
		LookaheadInterval:      o.Lookahead,
		RotationCheckFrequency: o.CheckInterval,
		FieldOwner:             "ec2guard-webhook",
		Webhooks: []rotator.WebhookInfo{
			{Name: o.WebhookConfiguration, Type: rotator.Validating},
			{Name: o.WebhookConfiguration, Type: rotator.Mutating},
		},
	}
	if err := rotator.AddRotator(mgr, cr); err != nil {
		return fmt.Errorf("self-managed certificates: add the rotator: %w", err)
	}
	return nil
}

// LazyCertificate serves the certificate files of a directory that may not exist yet: in the
// self-managed mode the leader writes the Secret and the kubelet mounts it some time after the pod
// started. Until the files exist TLS handshakes fail and Checker reports not ready; afterwards
// controller-runtime's certwatcher reloads them whenever the kubelet updates the mount.
type LazyCertificate struct {
	CertFile, KeyFile string
	// Poll is how often the files are looked for before they exist; 0: one second.
	Poll time.Duration
	Log  logr.Logger

	mu      sync.RWMutex
	watcher *certwatcher.CertWatcher
}

// NewLazyCertificate is a LazyCertificate for dir/certName and dir/keyName.
func NewLazyCertificate(dir, certName, keyName string, log logr.Logger) *LazyCertificate {
	return &LazyCertificate{CertFile: filepath.Join(dir, certName), KeyFile: filepath.Join(dir, keyName), Log: log}
}

// errNotProvisioned is returned until the certificate files exist.
var errNotProvisioned = errors.New("the serving certificate is not provisioned yet (self-managed mode: waiting for the leader to write the Secret and the kubelet to mount it)")

// GetCertificate is a tls.Config GetCertificate.
func (l *LazyCertificate) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.RLock()
	w := l.watcher
	l.mu.RUnlock()
	if w == nil {
		return nil, errNotProvisioned
	}
	return w.GetCertificate(hello)
}

// TLSOption sets GetCertificate on the webhook server's TLS configuration (which makes
// controller-runtime skip its own certwatcher).
func (l *LazyCertificate) TLSOption(c *tls.Config) { c.GetCertificate = l.GetCertificate }

// Checker is a readiness check: ready once the certificate is loaded.
func (l *LazyCertificate) Checker(_ *http.Request) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.watcher == nil {
		return errNotProvisioned
	}
	return nil
}

// NeedLeaderElection: every replica serves.
func (l *LazyCertificate) NeedLeaderElection() bool { return false }

// Start waits for the files, loads them and watches them until ctx ends (a manager Runnable).
func (l *LazyCertificate) Start(ctx context.Context) error {
	poll := l.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	logged := false
	for {
		if fileExists(l.CertFile) && fileExists(l.KeyFile) {
			w, err := certwatcher.New(l.CertFile, l.KeyFile)
			if err == nil {
				l.mu.Lock()
				l.watcher = w
				l.mu.Unlock()
				l.Log.Info("serving certificate loaded", "file", l.CertFile)
				if err := w.Start(ctx); err != nil {
					return fmt.Errorf("watch the serving certificate %s: %w", l.CertFile, err)
				}
				return nil
			}
			// Half-written or not yet a pair: try again.
			l.Log.V(1).Info("serving certificate not loadable yet", "error", err.Error())
		} else if !logged {
			l.Log.Info("waiting for the serving certificate", "file", l.CertFile)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
