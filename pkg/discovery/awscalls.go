package discovery

import (
	"context"
	"errors"
	"sync/atomic"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// callCounterID names the middleware.
const callCounterID = "ec2guard/CountAttempts"

// countEC2Attempts returns a per-call EC2 option that counts every attempt (retries included)
// in m by API and result code, and adds it to n.
func countEC2Attempts(m *Metrics, n *atomic.Int64) func(*ec2.Options) {
	return func(o *ec2.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			// The end of the finalize step runs inside the retry loop: once per attempt.
			return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc(callCounterID,
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleFinalize(ctx, in)
					code := resultCode(err)
					_, throttled := retry.DefaultThrottleErrorCodes[code]
					m.AWSCall(apiName(ctx), code, throttled)
					if n != nil {
						n.Add(1)
					}
					return out, md, err
				}), middleware.After)
		})
	}
}

func apiName(ctx context.Context) string {
	return "ec2:" + awsmiddleware.GetOperationName(ctx)
}

// resultCode is the AWS error code of an attempt, OK on success.
func resultCode(err error) string {
	var apiErr smithy.APIError
	switch {
	case err == nil:
		return "OK"
	case errors.As(err, &apiErr):
		return apiErr.ErrorCode()
	case errors.Is(err, context.DeadlineExceeded):
		return "DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	return "Error"
}
