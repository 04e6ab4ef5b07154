package admission

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned is a serving certificate for "webhook.test" signed by its own key, and a pool that
// trusts it.
func selfSigned(b *testing.B, key crypto.Signer) (tls.Certificate, *x509.CertPool) {
	b.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "webhook.test"}, DNSNames: []string{"webhook.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// BenchmarkTLSHandshake measures what one new connection from the API server costs with the
// webhook's serving key an RSA-2048 key (what Helm's genCA/genSignedCert and cert-controller make)
// or an ECDSA P-256 key (the chart's self-signed mode and cert-manager Certificate): "handshake"
// is a full TLS 1.3 handshake, both sides in this process, with Go's default key exchange (as the
// API server's client); "server-signature" is the one step that depends on the key, the server's
// CertificateVerify signature.
func BenchmarkTLSHandshake(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  crypto.Signer
		opts crypto.SignerOpts
	}{{"rsa-2048", rsaKey, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}}, {"ecdsa-p256", ecKey, crypto.SHA256}} {
		cert, pool := selfSigned(b, bc.key)
		b.Run(bc.name+"/handshake", func(b *testing.B) {
			server := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
			client := &tls.Config{RootCAs: pool, ServerName: "webhook.test", NextProtos: []string{"http/1.1"}}
			for b.Loop() {
				c, s := net.Pipe()
				errs := make(chan error, 1)
				go func() { errs <- tls.Server(s, server).Handshake() }()
				if err := tls.Client(c, client).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
				_ = s.Close()
			}
		})
		b.Run(bc.name+"/server-signature", func(b *testing.B) {
			digest := sha256.Sum256([]byte("transcript"))
			for b.Loop() {
				if _, err := bc.key.Sign(rand.Reader, digest[:], bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
