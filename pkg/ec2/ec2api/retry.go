package ec2api

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// DefaultMaxAttempts is the retry budget (attempts per call, the first one
// included) when RetryOptions.MaxAttempts is zero.
const DefaultMaxAttempts = 5

// DefaultMaxBackoff caps one backoff delay when RetryOptions.MaxBackoff is zero.
const DefaultMaxBackoff = 20 * time.Second

// RetryOptions configures the retryer of the AWS clients ec2guard builds.
// Throttling errors (RequestLimitExceeded, Throttling, ...) and transient
// errors are retried with exponential backoff and full jitter until
// MaxAttempts attempts have been made; the context's deadline ends the
// retries earlier.
type RetryOptions struct {
	// MaxAttempts is the budget of attempts per call (first one included).
	MaxAttempts int
	// MaxBackoff caps one backoff delay.
	MaxBackoff time.Duration
	// Backoff replaces the SDK's exponential-jitter backoff; tests inject a
	// recorder that returns tiny delays.
	Backoff retry.BackoffDelayer
	// Adaptive adds the SDK's client-side adaptive rate limiting on top of the
	// retries: after a throttling answer later attempts of the same client
	// wait for a token (at least 0.5 requests per second). Good for the
	// discoverer's long-lived per-group clients; not for the webhook, whose
	// deadline is shorter than such a wait.
	Adaptive bool
}

// NewRetryer returns a retryer for o. Use it as aws.Config.Retryer (through
// a func() aws.Retryer) or per call with WithRetryer.
func NewRetryer(o RetryOptions) aws.Retryer {
	std := func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		if so.MaxAttempts <= 0 {
			so.MaxAttempts = DefaultMaxAttempts
		}
		so.MaxBackoff = o.MaxBackoff
		if so.MaxBackoff <= 0 {
			so.MaxBackoff = DefaultMaxBackoff
		}
		if o.Backoff != nil {
			so.Backoff = o.Backoff
		}
	}
	if o.Adaptive {
		return retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, std)
		})
	}
	return retry.NewStandard(std)
}

// WithRetryer is a per-call option that sets the retryer of one
// ListRunningInstances or DryRunDescribeInstances call.
func WithRetryer(r aws.Retryer) func(*ec2.Options) {
	return func(o *ec2.Options) { o.Retryer = r }
}
