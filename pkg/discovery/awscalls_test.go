package discovery

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func TestCountEC2AttemptsCountsRetriesAndThrottles(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := newFakeEC2(t)
	srv.set("us-east-1", fleet("e", 5))
	srv.failWith("us-east-1", "RequestLimitExceeded")
	client := ec2.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "test-not-a-secret", ""),
		BaseEndpoint: aws.String(srv.srv.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 3
				o.MaxBackoff = time.Millisecond
			})
		},
	})
	m := testMetrics(t)
	var n atomic.Int64
	_, _, err := ec2api.ListRunningInstances(context.Background(), client, nil, countEC2Attempts(m, &n))
	if err == nil {
		t.Fatal("listing succeeded against a throttling endpoint")
	}
	if n.Load() != 3 || srv.callCount("us-east-1") != 3 {
		t.Fatalf("counted %d attempts, the endpoint saw %d; want 3 each", n.Load(), srv.callCount("us-east-1"))
	}
	if v := metricValue(t, m.throttles); v != 3 {
		t.Fatalf("throttles = %v, want 3", v)
	}
	if v := metricValue(t, m.awsCalls); v != 3 {
		t.Fatalf("aws calls = %v, want 3", v)
	}

	srv.failWith("us-east-1", "")
	insts, pages, err := ec2api.ListRunningInstances(context.Background(), client, nil, countEC2Attempts(m, &n))
	if err != nil || len(insts) != 5 || pages != 1 || n.Load() != 4 {
		t.Fatalf("listing: %d instances, %d pages, err %v, %d attempts counted", len(insts), pages, err, n.Load())
	}
	ch := m.awsCalls.WithLabelValues("ec2:DescribeInstances", "OK")
	if v := metricValue(t, ch); v != 1 {
		t.Fatalf("aws_calls_total{result=OK} = %v, want 1", v)
	}
}
