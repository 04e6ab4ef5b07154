package metricsserving

import (
	"flag"
	"io"
	"testing"
)

func TestOptions(t *testing.T) {
	plain := Options(":8080", false)
	if plain.SecureServing || plain.FilterProvider != nil || plain.BindAddress != ":8080" {
		t.Errorf("plain options %+v: want HTTP without a filter", plain)
	}
	secure := Options(":8443", true)
	if !secure.SecureServing || secure.FilterProvider == nil || secure.BindAddress != ":8443" {
		t.Errorf("secure options %+v: want HTTPS with the authn/authz filter", secure)
	}
}

func TestSecureFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var secure bool
	AddSecureFlag(fs, &secure)
	if err := fs.Parse([]string{"--metrics-secure"}); err != nil || !secure {
		t.Fatalf("--metrics-secure: %v, secure=%t", err, secure)
	}
}
