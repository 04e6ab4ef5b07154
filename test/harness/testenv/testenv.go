// Package testenv reads where the real parts that `make test-env` (hack/test-env.sh) prepares
// are: each is named by an environment variable. A test whose part is missing is skipped with a
// hint, or fails when EC2GUARD_INTEGRATION=1 (set by test-env), so `go test ./...` still works on a
// bare machine while an integration run cannot silently skip.
package testenv

import (
	"os"
	"testing"
)

// IntegrationEnv, when "1", turns a missing part into a test failure instead of a skip.
const IntegrationEnv = "EC2GUARD_INTEGRATION"

// script is the hack/ script that prints the variable name ("" for one it does not know).
func script(name string) string {
	switch name {
	case "KUBEBUILDER_ASSETS", "EC2GUARD_KUBECTL":
		return "hack/k8s-assets.sh"
	case "EC2GUARD_MOTO_SERVER":
		return "hack/moto.sh"
	case "EC2GUARD_ORACLE":
		return "hack/oracle.sh"
	case "EC2GUARD_HELM":
		return "hack/helm.sh"
	}
	return ""
}

// Require returns the value of the environment variable name. Unset, it skips tb with a hint to
// run `make test-env`, or fails it under EC2GUARD_INTEGRATION=1.
func Require(tb testing.TB, name string) string {
	tb.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: run `make test-env` and `source .cache/test-env.sh`"
	if s := script(name); s != "" {
		msg += " (or `source <(" + s + ")`)"
	}
	if os.Getenv(IntegrationEnv) == "1" {
		tb.Fatalf("%s (%s=1)", msg, IntegrationEnv)
	}
	tb.Skip(msg)
	return ""
}
