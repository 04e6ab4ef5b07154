package kubeconfig

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: t}
`

// The rate limits apply whatever the configuration's source: client-go's defaults (5/10) would
// otherwise throttle a kubeconfig file's client.
func TestLoadAppliesRateLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse([]string{"--kubeconfig", path, "--kube-api-qps=42", "--kube-api-burst=84"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.QPS != 42 || c.Burst != 84 || c.Host != "https://127.0.0.1:6443" {
		t.Errorf("QPS %v burst %d host %s, want 42/84 from the flags", c.QPS, c.Burst, c.Host)
	}
	t.Setenv("KUBECONFIG", path)
	c, err = Load(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if c.QPS != DefaultQPS || c.Burst != DefaultBurst {
		t.Errorf("from $KUBECONFIG: QPS %v burst %d, want the defaults %d/%d", c.QPS, c.Burst, DefaultQPS, DefaultBurst)
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{QPS: 0, Burst: 1}).Validate(); err == nil {
		t.Error("QPS 0 accepted")
	}
	if err := (Options{QPS: 1, Burst: 0}).Validate(); err == nil {
		t.Error("burst 0 accepted")
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Error(err)
	}
}

func TestLoadNamesMissingFile(t *testing.T) {
	_, err := Load(Options{Path: "/nonexistent/kubeconfig", QPS: 1, Burst: 1})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/kubeconfig") {
		t.Errorf("error %v does not name the file", err)
	}
}
