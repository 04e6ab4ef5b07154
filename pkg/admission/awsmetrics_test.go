package admission

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

const callerIdentityXML = `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/gloo</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>
<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`

const accessDeniedXML = `<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>no</Message></Error><RequestId>1</RequestId></ErrorResponse>`

func stsClient(endpoint string, hc aws.HTTPClient) *sts.Client {
	return sts.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(testAccessKeyID, testSecretKey, ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   hc,
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	})
}

func TestCountingHTTPClientLabelsByAPIAndResult(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = w.Write([]byte(callerIdentityXML))
		} else {
			_, _ = w.Write([]byte(accessDeniedXML))
		}
	}))
	m, reg := testMetrics(t)
	client := stsClient(srv.URL, NewCountingHTTPClient(awshttp.NewBuildableClient(), m))

	if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatal(err)
	}
	status = http.StatusForbidden
	if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err == nil {
		t.Fatal("no error for HTTP 403")
	}
	srv.Close()
	if _, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err == nil {
		t.Fatal("no error from a closed server")
	}
	for result, want := range map[string]float64{AWSResultOK: 1, AWSResultClientError: 1, AWSResultNetworkError: 1} {
		if got := counterValue(t, reg, MetricAWSCalls, map[string]string{"api": "sts:GetCallerIdentity", "result": result}); got != want {
			t.Errorf("result %s counted %v, want %v", result, got, want)
		}
	}
}
