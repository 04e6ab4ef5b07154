package awsclients

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// maxBufferedBody bounds the request bodies OwnBodies copies; ec2guard's AWS requests (EC2, IAM
// and STS query-protocol forms) are a few KiB at most. Larger or streamed bodies pass unchanged.
const maxBufferedBody = 1 << 20

// OwnBodies wraps the HTTP client of the AWS clients so that net/http sends a copy of each request
// body that the SDK cannot close. ec2guard's clients all use it; tests that build SDK clients of
// their own (the moto seeder) use it too.
//
// Without it, an answer can be lost and its request sent again (one more DescribeInstances call
// against the account's throttling bucket for the same page): net/http writes the body, then
// reads it once more to check that it has no bytes beyond its Content-Length. When the answer's
// headers arrive before that read, the SDK (smithy-go's ClientHandler) closes the request body as
// soon as the round trip returns; the read then fails with io.EOF, net/http closes the connection
// while the SDK is still reading the answer ("use of closed network connection"), and the SDK's
// retryer sends the request again. It takes a fast endpoint, or a pod starved of CPU between
// those two steps (TLS does not prevent it); against the in-memory EC2 simulator of the fleet
// benchmark on a loaded machine, 10–15% of the listings were sent twice. An in-memory copy
// (*bytes.Reader) is a body net/http knows: a small one goes out with the headers in one flush,
// after the check, and the check reads the copy, which closing the SDK's body does not touch.
func OwnBodies(next aws.HTTPClient) aws.HTTPClient {
	if next == nil {
		next = awshttp.NewBuildableClient().WithTimeout(DefaultHTTPTimeout)
	}
	if _, ok := next.(ownBodiesClient); ok {
		return next
	}
	return ownBodiesClient{next: next}
}

type ownBodiesClient struct{ next aws.HTTPClient }

// Do implements aws.HTTPClient.
func (c ownBodiesClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.ContentLength <= 0 || req.ContentLength > maxBufferedBody {
		return c.next.Do(req)
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength+1))
	if err != nil {
		return nil, fmt.Errorf("read the request body of %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	if int64(len(b)) != req.ContentLength {
		return nil, fmt.Errorf("request body of %s %s: %d bytes, Content-Length says %d", req.Method, req.URL.Redacted(), len(b), req.ContentLength)
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(b))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return c.next.Do(out)
}
