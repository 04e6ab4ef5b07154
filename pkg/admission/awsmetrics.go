package admission

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
)

// AWS call results in MetricAWSCalls.
const (
	AWSResultOK           = "ok"
	AWSResultClientError  = "client-error"  // HTTP 4xx: denied, invalid key, throttled, ...
	AWSResultServerError  = "server-error"  // HTTP 5xx
	AWSResultNetworkError = "network-error" // no HTTP answer
	AWSResultCanceled     = "canceled"      // the caller's deadline or cancellation ended it
)

// CountingHTTPClient wraps the HTTP client of the AWS SDK clients and counts every call by API and
// result. The SDK puts the service and operation into each HTTP request's context, so the count
// covers every call, the ones made inside pkg/awsclients included, and each retry attempt.
type CountingHTTPClient struct {
	next    aws.HTTPClient
	metrics *Metrics
}

// NewCountingHTTPClient wraps next (which must not be nil).
func NewCountingHTTPClient(next aws.HTTPClient, m *Metrics) *CountingHTTPClient {
	return &CountingHTTPClient{next: next, metrics: m}
}

// Do implements aws.HTTPClient.
func (c *CountingHTTPClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	c.metrics.AWSCall(apiName(req.Context()), callResult(req.Context(), resp, err))
	return resp, err
}

// apiName is "service:Operation" as IAM writes actions, e.g. "sts:GetCallerIdentity".
func apiName(ctx context.Context) string {
	svc := strings.ToLower(strings.ReplaceAll(awsmiddleware.GetServiceID(ctx), " ", ""))
	op := awsmiddleware.GetOperationName(ctx)
	switch {
	case svc == "" && op == "":
		return "unknown"
	case svc == "":
		return op
	case op == "":
		return svc
	}
	return svc + ":" + op
}

func callResult(ctx context.Context, resp *http.Response, err error) string {
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil):
		return AWSResultCanceled
	case err != nil || resp == nil:
		return AWSResultNetworkError
	case resp.StatusCode >= 500:
		return AWSResultServerError
	case resp.StatusCode >= 400:
		return AWSResultClientError
	}
	return AWSResultOK
}
