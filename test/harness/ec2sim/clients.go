package ec2sim

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	ec2model "github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// Clients are real AWS clients for endpoint as ec2guard builds them (pkg/awsclients) from a Gloo
// AWS secret holding access key id key: the tests' clients behave like the product's. hc may be
// nil (awsclients' default); r sets the retries (MaxAttempts 1: every answer is seen).
func Clients(tb testing.TB, endpoint string, hc aws.HTTPClient, key string, r ec2api.RetryOptions) *awsclients.Clients {
	tb.Helper()
	f, err := awsclients.NewFactory(awsclients.Options{Endpoint: endpoint, HTTPClient: hc, Retry: r})
	if err != nil {
		tb.Fatal(err)
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s-" + strings.ToLower(key), UID: types.UID("uid-" + key), ResourceVersion: "1"},
		Data:       map[string][]byte{"aws_access_key_id": []byte(key), "aws_secret_access_key": []byte(strings.Repeat("s", 40))},
	}
	creds, findings := ec2model.ParseSecret(sec)
	if findings.HasErrors() {
		tb.Fatalf("secret: %v", findings.Errors())
	}
	c, err := f.Get(context.Background(), awsclients.Request{Region: "us-east-1", Secret: awsclients.NewSecretVersion(sec, creds)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
