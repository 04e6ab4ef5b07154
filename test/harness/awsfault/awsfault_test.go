package awsfault

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/test/harness/ec2sim"
)

const (
	keyA = "AKIAFAULTA000000000A"
	keyB = "AKIAFAULTB000000000B"
)

// clients are real SDK clients through the proxy as ec2guard builds them (pkg/awsclients, which
// also keeps net/http from sending a page twice), without retries so every answer is seen.
func clients(t *testing.T, p *Proxy, key string) (*ec2.Client, *sts.Client) {
	t.Helper()
	c := ec2sim.Clients(t, p.URL(), nil, key, ec2api.RetryOptions{MaxAttempts: 1})
	return c.EC2, c.STS
}

func code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// Each fault reaches the SDK as AWS would send it; a fault scoped to one access key leaves the
// others alone; every call is counted.
func TestFaults(t *testing.T) {
	sim := ec2sim.Start(ec2sim.Options{RefillRate: -1})
	defer sim.Close()
	sim.AddAccount(keyA, "arn:aws:iam::111111111111:user/a", nil)
	sim.AddAccount(keyB, "arn:aws:iam::222222222222:user/b", nil)
	p, err := Start(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ec2A, stsA := clients(t, p, keyA)
	ec2B, _ := clients(t, p, keyB)
	ctx := context.Background()
	describe := func(c *ec2.Client, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		return err
	}

	p.SetFaults(Fault{Kind: Throttle, AccessKeyID: keyA})
	if c := code(describe(ec2A, 5*time.Second)); c != "RequestLimitExceeded" {
		t.Errorf("EC2 throttle: code %q", c)
	}
	if _, err := stsA.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); code(err) != "Throttling" {
		t.Errorf("STS throttle: %v", err)
	}
	if err := describe(ec2B, 5*time.Second); err != nil {
		t.Errorf("a fault for key A reached key B: %v", err)
	}

	p.SetFaults(Fault{Kind: ServerError, Service: "ec2"})
	if c := code(describe(ec2A, 5*time.Second)); c != "InternalError" {
		t.Errorf("EC2 5xx: code %q", c)
	}
	if _, err := stsA.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("an EC2-only fault reached STS: %v", err)
	}

	p.SetFaults(Fault{Kind: Hang, Action: "DescribeInstances"})
	if err := describe(ec2A, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hang: %v, want the caller's deadline", err)
	}

	p.SetFaults(Fault{Kind: Reset})
	if err := describe(ec2A, 5*time.Second); err == nil || code(err) != "" {
		t.Errorf("reset: %v, want a transport error", err)
	}

	p.SetFaults(Fault{Kind: SlowBody, ByteDelay: 5 * time.Millisecond})
	if err := describe(ec2A, 200*time.Millisecond); err == nil {
		t.Error("slow body: answered within 200 ms")
	}
	if err := describe(ec2B, time.Minute); err != nil {
		t.Errorf("slow body with time to wait: %v", err)
	}

	p.SetFaults()
	if err := describe(ec2A, 5*time.Second); err != nil {
		t.Errorf("no faults: %v", err)
	}
	inj := p.Injected()
	if inj[Throttle] != 2 || inj[ServerError] != 1 || inj[Hang] != 1 || inj[Reset] != 1 || inj[SlowBody] != 2 {
		t.Errorf("injected %v", inj)
	}
	if calls := p.Calls(); calls["DescribeInstances"] != 8 || calls["GetCallerIdentity"] != 2 {
		t.Errorf("calls %v, want 8 DescribeInstances and 2 GetCallerIdentity", calls)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := Start("http://10.0.0.1:5000"); err == nil {
		t.Error("a non-loopback target was accepted")
	}
}
