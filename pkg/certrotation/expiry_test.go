package certrotation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writeCert(t *testing.T, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tls.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExpiryWatcher(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		left     time.Duration
		wantWarn string
	}{
		{"far", 90 * 24 * time.Hour, ""},
		{"within 30 days", 29 * 24 * time.Hour, "expires soon"},
		{"expired", -time.Hour, "has expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := NewExpiryMetric(reg)
			if err != nil {
				t.Fatal(err)
			}
			var logs strings.Builder
			log := funcr.New(func(prefix, args string) { logs.WriteString(args + "\n") }, funcr.Options{})
			notAfter := now.Add(tc.left).Truncate(time.Second)
			w := &ExpiryWatcher{CertFile: writeCert(t, notAfter), Metric: m, Log: log, Now: func() time.Time { return now }}
			got, err := w.Check()
			if err != nil || !got.Equal(notAfter) {
				t.Fatalf("Check = %v, %v; want %v", got, err, notAfter)
			}
			if v := testutil.ToFloat64(m.gauge); v != float64(notAfter.Unix()) {
				t.Errorf("metric %v, want %d", v, notAfter.Unix())
			}
			if tc.wantWarn == "" && logs.Len() > 0 {
				t.Errorf("unexpected log: %s", logs.String())
			}
			if tc.wantWarn != "" && !strings.Contains(logs.String(), tc.wantWarn) {
				t.Errorf("log %q lacks %q", logs.String(), tc.wantWarn)
			}
		})
	}
}

func TestNotAfterBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.crt")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{bad: "no PEM CERTIFICATE block", filepath.Join(dir, "missing"): "no such file"} {
		if _, err := NotAfter(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("NotAfter(%s) = %v, want an error naming the file and %q", path, err, want)
		}
	}
}
