package webhook_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// certReloaded shows that the running webhook serves a new certificate once the files in --cert-dir
// change (controller-runtime's certwatcher), with no restart: cert-manager rotates them this way. It
// then puts the original files back and waits until they are served again, so the API server (which
// trusts envtest's CA) keeps reaching the webhook.
func (x *e2e) certReloaded(t *testing.T) {
	dir := x.env.Webhook.CertDir
	crtPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	origCrt, err := os.ReadFile(crtPath)
	if err != nil {
		t.Fatal(err)
	}
	origKey, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	origSerial := servedSerial(t, x.env.Webhook.Host, x.env.Webhook.Port)

	newCrt, newKey, newSerial := selfSignedCert(t, x.env.Webhook.Host)
	writeCertFiles(t, crtPath, keyPath, newCrt, newKey)
	t.Cleanup(func() { writeCertFiles(t, crtPath, keyPath, origCrt, origKey) })
	waitServedSerial(t, x.env.Webhook.Host, x.env.Webhook.Port, newSerial)

	writeCertFiles(t, crtPath, keyPath, origCrt, origKey)
	waitServedSerial(t, x.env.Webhook.Host, x.env.Webhook.Port, origSerial)
}

// writeCertFiles replaces key then certificate (each by rename, as kubelet's atomic writer and
// cert-manager do), so the watcher never pairs a new certificate with the old key for long.
func writeCertFiles(t *testing.T, crtPath, keyPath string, crt, key []byte) {
	t.Helper()
	for _, f := range []struct {
		path string
		data []byte
	}{{keyPath, key}, {crtPath, crt}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
}

// servedSerial is the serial number of the certificate the webhook presents.
func servedSerial(t *testing.T, host string, port int) *big.Int {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp",
		net.JoinHostPort(host, strconv.Itoa(port)), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only reads the presented certificate
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// waitServedSerial polls (bounded) until the webhook presents the certificate with serial want.
func waitServedSerial(t *testing.T, host string, port int, want *big.Int) {
	t.Helper()
	poll.Until(t, 30*time.Second, fmt.Sprintf("the webhook to present the reloaded certificate (serial %s)", want), func() (bool, string) {
		got := servedSerial(t, host, port)
		return got.Cmp(want) == 0, "it presents serial " + got.String()
	})
}

// selfSignedCert makes a certificate for host with a fresh serial number.
func selfSignedCert(t *testing.T, host string) (crtPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ec2guard-reload-test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP(host)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), serial
}
