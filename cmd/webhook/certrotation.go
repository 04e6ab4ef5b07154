package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/certrotation"
)

// certRotationConfig is the self-managed certificate mode (--cert-rotation): the webhook
// provisions and rotates its own CA and serving certificate (docs/install.md, TLS).
type certRotationConfig struct {
	enabled                 bool
	secret                  string
	webhookConfiguration    string
	dnsName                 string
	caValidity              time.Duration
	serverValidity          time.Duration
	lookahead               time.Duration
	checkInterval           time.Duration
	leaderElectionNamespace string
	leaderElectionID        string
}

func (c *certRotationConfig) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "cert-rotation", false, "self-managed certificates: the elected leader among the replicas provisions and renews the CA and serving certificate in --cert-rotation-secret and keeps both webhook configurations' caBundle equal to the CA; every replica serves the Secret mounted at --cert-dir")
	fs.StringVar(&c.secret, "cert-rotation-secret", "", "namespace/name of the Secret holding the CA and serving certificate (--cert-rotation)")
	fs.StringVar(&c.webhookConfiguration, "cert-rotation-webhook-configuration", "", "name of the ValidatingWebhookConfiguration and MutatingWebhookConfiguration whose caBundle is managed (--cert-rotation)")
	fs.StringVar(&c.dnsName, "cert-rotation-dns-name", "", "DNS name the API server calls, <service>.<namespace>.svc (--cert-rotation)")
	fs.DurationVar(&c.caValidity, "cert-rotation-ca-validity", certrotation.DefaultCAValidity, "lifetime of a new CA (--cert-rotation)")
	fs.DurationVar(&c.serverValidity, "cert-rotation-server-validity", certrotation.DefaultServerValidity, "lifetime of a new serving certificate (--cert-rotation)")
	fs.DurationVar(&c.lookahead, "cert-rotation-lookahead", certrotation.DefaultLookahead, "renew a certificate once it would be expired this far ahead (--cert-rotation)")
	fs.DurationVar(&c.checkInterval, "cert-rotation-check-interval", certrotation.DefaultRotationCheckInterval, "how often the leader checks whether to renew (--cert-rotation)")
	fs.StringVar(&c.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease of --cert-rotation (default: the pod's)")
	fs.StringVar(&c.leaderElectionID, "leader-election-id", "ec2guard-webhook", "name of the leader election Lease of --cert-rotation")
}

// options turns the flags into certrotation.Options; certDir, certName and keyName are the
// webhook's own.
func (c *certRotationConfig) options(certDir, certName, keyName string) (certrotation.Options, error) {
	ns, name, ok := strings.Cut(c.secret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return certrotation.Options{}, fmt.Errorf("--cert-rotation-secret %q: must be namespace/name", c.secret)
	}
	o := certrotation.Options{
		Secret: types.NamespacedName{Namespace: ns, Name: name}, WebhookConfiguration: c.webhookConfiguration,
		DNSName: c.dnsName, CertDir: certDir, CertName: certName, KeyName: keyName,
		CAValidity: c.caValidity, ServerValidity: c.serverValidity, Lookahead: c.lookahead, CheckInterval: c.checkInterval,
	}
	if svc, rest, ok := strings.Cut(c.dnsName, "."); ok {
		// The short forms the chart's other TLS modes put in the certificate too.
		if nsPart, _, _ := strings.Cut(rest, "."); nsPart != "" {
			o.ExtraDNSNames = []string{svc, svc + "." + nsPart, c.dnsName + ".cluster.local"}
		}
	}
	if err := o.Validate(); err != nil {
		return certrotation.Options{}, fmt.Errorf("--cert-rotation: %w", err)
	}
	return o, nil
}

// validate checks the flags when the mode is on.
func (c *certRotationConfig) validate(certDir, certName, keyName string) error {
	if !c.enabled {
		if c.secret != "" || c.webhookConfiguration != "" || c.dnsName != "" {
			return errors.New("--cert-rotation-secret, --cert-rotation-webhook-configuration and --cert-rotation-dns-name need --cert-rotation")
		}
		return nil
	}
	_, err := c.options(certDir, certName, keyName)
	return err
}
