// Package metricsserving builds the metrics endpoint options of both binaries: plain HTTP, or
// HTTPS where every scrape is authenticated (TokenReview) and authorized (SubjectAccessReview of
// GET on the non-resource URL /metrics) by the API server.
package metricsserving

import (
	"flag"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// SecureFlag is the name of the flag selecting HTTPS with authentication and authorization.
const SecureFlag = "metrics-secure"

// AddSecureFlag registers --metrics-secure on fs.
func AddSecureFlag(fs *flag.FlagSet, secure *bool) {
	fs.BoolVar(secure, SecureFlag, false, "serve /metrics over HTTPS (a self-signed certificate) and let only callers the API server authenticates and authorizes for GET /metrics scrape it (needs create on tokenreviews and subjectaccessreviews)")
}

// Options returns the metrics server options for addr: plain HTTP, or with secure HTTPS guarded by
// controller-runtime's authentication and authorization filter.
func Options(addr string, secure bool) metricsserver.Options {
	o := metricsserver.Options{BindAddress: addr, SecureServing: secure}
	if secure {
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}
