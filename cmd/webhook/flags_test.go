package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/codes"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("EC2GUARD_AWS_ENDPOINT", "")
	cfg, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.webhookPort != 9443 || cfg.iamDeadline != 2*time.Second || cfg.iamCacheTTL != 5*time.Minute ||
		strings.Join(cfg.iamSources, ",") != "local" || cfg.iamReader != "upstream" || cfg.awsEndpoint != "" ||
		cfg.metricsAddr != ":8080" || cfg.healthAddr != ":8081" || cfg.enableHTTP2 || len(cfg.secretNamespaces) != 0 ||
		len(cfg.podIdentityNamespaces) != 0 || cfg.accessAllowedTTL != time.Minute || cfg.accessDeniedTTL != 10*time.Second {
		t.Errorf("defaults %+v", cfg)
	}
	if got, want := cfg.enforcement.String(), admission.DefaultEnforcement().String(); got != want {
		t.Errorf("enforcement %s, want %s", got, want)
	}
}

func TestParseFlagsValues(t *testing.T) {
	cfg, err := parseFlags([]string{
		"--webhook-port=10250", "--cert-dir=/certs", "--secret-namespaces=default, gloo-system",
		"--enforce-iam-unknown=deny", "--enforce-permissive-no-filters=off", "--iam-deadline=1500ms",
		"--iam-sources=local,dry-run", "--aws-endpoint=http://127.0.0.1:5000", "--log-format=text",
		"--pod-identity-namespaces=team-a, gloo-system", "--access-cache-allowed-ttl=0", "--access-cache-denied-ttl=3s",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.webhookPort != 10250 || cfg.certDir != "/certs" || strings.Join(cfg.secretNamespaces, "|") != "default|gloo-system" ||
		cfg.iamDeadline != 1500*time.Millisecond || strings.Join(cfg.iamSources, ",") != "local,dry-run" ||
		cfg.awsEndpoint != "http://127.0.0.1:5000" || cfg.log.Format != "text" ||
		!cfg.podIdentityNamespaces.Allows("team-a") || cfg.podIdentityNamespaces.Allows("team-b") ||
		cfg.accessCacheOptions().AllowedTTL >= 0 || cfg.accessCacheOptions().DeniedTTL != 3*time.Second {
		t.Errorf("parsed %+v", cfg)
	}
	if cfg.enforcement.Action(codes.CheckIAMUnknown) != admission.Deny ||
		cfg.enforcement.Action(codes.CheckPermissiveNoFilters) != admission.Off ||
		cfg.enforcement.Action(codes.CheckSpec) != admission.Deny {
		t.Errorf("enforcement %s", cfg.enforcement)
	}
}

func TestParseFlagsErrorsNameTheFlag(t *testing.T) {
	cases := map[string][]string{
		"enforce-spec":              {"--enforce-spec=block"},
		"--iam-deadline":            {"--iam-deadline=0s"},
		"--iam-sources":             {"--iam-sources=oracle"},
		"--iam-reader=auditor":      {"--iam-reader=auditor"},
		"account-snapshot":          {"--iam-collection=account-snapshot"},
		"--webhook-port":            {"--webhook-port=0"},
		"--log-level":               {"--log-level=trace"},
		"--pod-identity-namespaces": {"--pod-identity-namespaces=Team_A"},
		"--access-cache-denied-ttl": {"--access-cache-denied-ttl=-1s"},
		"unexpected arguments":      {"extra"},
		"flag provided but not ":    {"--no-such-flag"},
	}
	for want, args := range cases {
		_, err := parseFlags(args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want one containing %q", args, err, want)
		}
	}
}

func TestParseFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags([]string{"--help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{"-enforce-iam-deny", "-iam-deadline", "-aws-endpoint", "-secret-namespaces", "-cert-dir"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %s", want)
		}
	}
}

// --iam-read-with has the discoverer's values and sets what the deprecated --iam-reader and
// --iam-auditor set.
func TestIAMReadWith(t *testing.T) {
	cases := map[string]struct {
		reader  string
		auditor bool
	}{
		"upstream":              {"upstream", false},
		"upstream-then-auditor": {"upstream", true},
		"auditor":               {"auditor", true},
	}
	for v, want := range cases {
		cfg, err := parseFlags([]string{"--iam-read-with=" + v}, io.Discard)
		if err != nil {
			t.Fatalf("--iam-read-with=%s: %v", v, err)
		}
		if cfg.iamReader != want.reader || cfg.iamAuditor != want.auditor {
			t.Errorf("--iam-read-with=%s: reader %q auditor %v, want %q %v", v, cfg.iamReader, cfg.iamAuditor, want.reader, want.auditor)
		}
	}
	if _, err := parseFlags([]string{"--iam-read-with=everyone"}, io.Discard); err == nil {
		t.Error("an unknown --iam-read-with was accepted")
	}
	cfg, err := parseFlags([]string{"--shutdown-timeout=7s", "--log-level=warn"}, io.Discard)
	if err != nil || cfg.shutdownTimeout.Seconds() != 7 || cfg.log.Level != "warn" {
		t.Errorf("--shutdown-timeout/--log-level: %+v %v", cfg, err)
	}
}
