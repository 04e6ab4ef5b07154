// Package commonflags defines the flags the webhook and the discoverer share, so that the same
// thing has one name, one set of values and one help text in both (docs/operations.md lists them).
package commonflags

import (
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
)

// Logging is --log-level and --log-format.
type Logging struct {
	Level  string
	Format string
}

// DefaultLogging is info in JSON.
func DefaultLogging() Logging { return Logging{Level: "info", Format: "json"} }

// AddFlags registers --log-level and --log-format.
func (l *Logging) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&l.Level, "log-level", l.Level, "log level: debug, info, warn or error")
	fs.StringVar(&l.Format, "log-format", l.Format, "log format: json or text")
}

// SlogLevel is the level as slog's.
func (l Logging) SlogLevel() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return lv, fmt.Errorf("--log-level %q: must be debug, info, warn or error", l.Level)
	}
	return lv, nil
}

// Validate checks both flags.
func (l Logging) Validate() error {
	if _, err := l.SlogLevel(); err != nil {
		return err
	}
	if l.Format != "json" && l.Format != "text" {
		return fmt.Errorf("--log-format %q: must be json or text", l.Format)
	}
	return nil
}

// AddAWSEndpoint registers --aws-endpoint (default: $EC2GUARD_AWS_ENDPOINT).
func AddAWSEndpoint(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "aws-endpoint", awsclients.EndpointFromEnv(), "AWS endpoint override, for an emulator only (tests, the demo); default $"+awsclients.EndpointEnv)
}

// Who reads IAM policies (--iam-read-with).
const (
	// ReadWithUpstream: the Upstream's own credentials.
	ReadWithUpstream = "upstream"
	// ReadWithAuditor: the pod's own AWS identity (IRSA, EKS Pod Identity, instance profile).
	ReadWithAuditor = "auditor"
	// ReadWithUpstreamThenAuditor: the Upstream's credentials, then the pod's identity where they
	// may not read IAM.
	ReadWithUpstreamThenAuditor = "upstream-then-auditor"
)

// IAMReadWithUsage is the help text of --iam-read-with in both binaries.
const IAMReadWithUsage = "who reads IAM policies: upstream (the Upstream's credentials), auditor (the pod's own AWS identity) or upstream-then-auditor (the Upstream's, then the pod's on AccessDenied)"

// AddIAMReadWith registers --iam-read-with (default upstream).
func AddIAMReadWith(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "iam-read-with", ReadWithUpstream, IAMReadWithUsage)
}

// ValidateIAMReadWith checks an --iam-read-with value.
func ValidateIAMReadWith(v string) error {
	switch v {
	case ReadWithUpstream, ReadWithAuditor, ReadWithUpstreamThenAuditor:
		return nil
	}
	return fmt.Errorf("--iam-read-with %q: must be %s, %s or %s", v, ReadWithUpstream, ReadWithAuditor, ReadWithUpstreamThenAuditor)
}

// AddShutdownTimeout registers --shutdown-timeout (default 30s): how long a SIGTERM waits for work
// in flight (admission requests, refreshes).
func AddShutdownTimeout(fs *flag.FlagSet, p *time.Duration) {
	fs.DurationVar(p, "shutdown-timeout", 30*time.Second, "how long shutdown (SIGTERM) waits for work in flight: admission requests, refreshes")
}
