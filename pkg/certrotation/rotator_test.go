package certrotation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
)

func validOptions() Options {
	return Options{
		Secret: types.NamespacedName{Namespace: "ec2guard-system", Name: "ec2guard-webhook-tls"}, WebhookConfiguration: "ec2guard",
		DNSName: "ec2guard-webhook.ec2guard-system.svc", CAValidity: DefaultCAValidity, ServerValidity: DefaultServerValidity,
		Lookahead: DefaultLookahead, CheckInterval: DefaultRotationCheckInterval,
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := validOptions().Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, tc := range map[string]struct {
		mutate func(*Options)
		want   string
	}{
		"no secret":         {func(o *Options) { o.Secret.Name = "" }, "Secret needs a namespace and a name"},
		"no configuration":  {func(o *Options) { o.WebhookConfiguration = "" }, "need a name"},
		"no DNS name":       {func(o *Options) { o.DNSName = "" }, "DNS name"},
		"lookahead too far": {func(o *Options) { o.Lookahead = o.ServerValidity }, "lookahead"},
		"server above CA":   {func(o *Options) { o.ServerValidity = 2 * o.CAValidity; o.Lookahead = time.Hour }, "must not exceed the CA validity"},
		"zero interval":     {func(o *Options) { o.CheckInterval = 0 }, "check interval 0s: must be positive"},
	} {
		o := validOptions()
		tc.mutate(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want %q", name, err, tc.want)
		}
	}
}

func writePair(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLazyCertificate: not ready and no certificate until the files appear, then both.
func TestLazyCertificate(t *testing.T) {
	dir := t.TempDir()
	l := NewLazyCertificate(dir, "tls.crt", "tls.key", logr.Discard())
	l.Poll = 10 * time.Millisecond
	if _, err := l.GetCertificate(&tls.ClientHelloInfo{}); err == nil {
		t.Fatal("a certificate before the files exist")
	}
	if err := l.Checker(nil); err == nil {
		t.Fatal("ready before the files exist")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Start(ctx) }()
	writePair(t, dir)
	deadline := time.Now().Add(30 * time.Second)
	for l.Checker(nil) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the certificate was never loaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := l.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || c == nil || c.Leaf == nil && len(c.Certificate) == 0 {
		t.Fatalf("GetCertificate = %v, %v", c, err)
	}
	cfg := &tls.Config{}
	l.TLSOption(cfg)
	if cfg.GetCertificate == nil {
		t.Error("TLSOption did not set GetCertificate")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
}
