package ec2sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// clientFor is a real SDK client for the server as ec2guard builds it (pkg/awsclients), without
// retries so every answer is seen.
func clientFor(t *testing.T, s *Server, key string) (*ec2.Client, *sts.Client) {
	t.Helper()
	c := clientsWith(t, s, key, ec2api.RetryOptions{MaxAttempts: 1})
	return c.EC2, c.STS
}

func clientsWith(t *testing.T, s *Server, key string, r ec2api.RetryOptions) *awsclients.Clients {
	t.Helper()
	return Clients(t, s.URL(), s.Client(), key, r)
}

func fleet(n int, tags func(i int) map[string]string) []Instance {
	out := make([]Instance, n)
	for i := range out {
		state := "running"
		if i%10 == 9 {
			state = "stopped"
		}
		out[i] = Instance{ID: fmt.Sprintf("i-%017d", i), State: state, PrivateIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), AZ: "us-east-1a", Tags: tags(i)}
	}
	return out
}

// ec2guard's own paginated listing reads every running instance, one page per 1,000.
func TestListingThroughTheSDK(t *testing.T) {
	s := Start(Options{RefillRate: -1, TLS: true})
	defer s.Close()
	s.AddAccount("AKIAGROUPA000000000A", "arn:aws:iam::111111111111:user/a", fleet(2500, func(i int) map[string]string {
		return map[string]string{"app": fmt.Sprintf("svc-%d", i%5), "Name": fmt.Sprintf("n%d", i)}
	}))
	s.AddAccount("AKIAGROUPB000000000B", "arn:aws:iam::222222222222:user/b", fleet(3, func(int) map[string]string { return nil }))
	c, _ := clientFor(t, s, "AKIAGROUPA000000000A")
	insts, pages, err := ec2api.ListRunningInstances(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 2250 || pages != 3 {
		t.Errorf("listed %d running instances in %d pages, want 2250 in 3", len(insts), pages)
	}
	for _, i := range insts {
		if i.State != "running" || i.Tags["app"] == "" || i.PrivateIPv4 == "" || i.AvailabilityZone != "us-east-1a" {
			t.Fatalf("listed %+v: want a running instance with its tags, IP and zone", i)
		}
	}
	// Tag filters: case-sensitive values with wildcards, ANDed filters.
	insts, _, err = ec2api.ListRunningInstances(context.Background(), c, []ec2types.Filter{
		{Name: aws.String("tag:app"), Values: []string{"svc-1", "svc-?3"}},
		{Name: aws.String("tag:Name"), Values: []string{"n1*"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range insts {
		if i.Tags["app"] != "svc-1" || i.Tags["Name"][:2] != "n1" {
			t.Fatalf("filtered listing holds %+v", i)
		}
	}
	if len(insts) == 0 {
		t.Error("filtered listing is empty")
	}
	cb, stsc := clientFor(t, s, "AKIAGROUPB000000000B")
	if insts, _, _ := ec2api.ListRunningInstances(context.Background(), cb, nil); len(insts) != 3 {
		t.Errorf("account b sees %d instances, want its own 3", len(insts))
	}
	id, err := stsc.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::222222222222:user/b" || aws.ToString(id.Account) != "222222222222" {
		t.Errorf("GetCallerIdentity = %+v, %v", id, err)
	}
	// 3 + 1 + 1 pages, each answered once.
	if st := s.Stats(); st.Pages != 5 || st.DescribeCalls != 5 || st.Retries != 0 || st.CallerIdentity != 1 {
		t.Errorf("stats %+v, want 5 pages in 5 requests, no retry, and a GetCallerIdentity", st)
	}
	if n := s.DescribeCallsOf("AKIAGROUPB000000000B"); n != 1 {
		t.Errorf("%d DescribeInstances requests with key b, want 1", n)
	}
}

// Through the AWS clients ec2guard builds (pkg/awsclients, with the discoverer's retryer), every
// listing of a one-page group is exactly one DescribeInstances request: no page is sent twice.
func TestNoRequestSentTwice(t *testing.T) {
	s := Start(Options{RefillRate: -1, TLS: true})
	defer s.Close()
	s.AddAccount("AKIAGROUPA000000000A", "arn:aws:iam::111111111111:user/a", fleet(100, func(i int) map[string]string {
		return map[string]string{"app": fmt.Sprintf("svc-%d", i%5)}
	}))
	c := clientsWith(t, s, "AKIAGROUPA000000000A", ec2api.RetryOptions{Adaptive: true})
	const workers, each = 4, 250
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, pages, err := ec2api.ListRunningInstances(context.Background(), c.EC2, nil); err != nil || pages != 1 {
					t.Errorf("listing: %d pages, %v", pages, err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d listings: %+v", workers*each, st)
	if st.DescribeCalls != workers*each || st.Pages != workers*each || st.Retries != 0 {
		t.Errorf("%d listings made %d DescribeInstances requests (%d pages, %d sent again), want one each", workers*each, st.DescribeCalls, st.Pages, st.Retries)
	}
}

func TestAttemptOf(t *testing.T) {
	for h, want := range map[string]int{"attempt=1; max=5": 1, "attempt=3; max=3": 3, "": 0, "attempt=x; max=1": 0, "max=2": 0} {
		if got := attemptOf(h); got != want {
			t.Errorf("attemptOf(%q) = %d, want %d", h, got, want)
		}
	}
}

// Each credential has its own bucket: one that is exhausted is throttled with EC2's error code,
// which the SDK classifies as throttling; another credential is not affected.
func TestTokenBucketPerCredential(t *testing.T) {
	s := Start(Options{BucketSize: 3, RefillRate: 0.001})
	defer s.Close()
	s.AddAccount("AKIAGROUPA000000000A", "arn:aws:iam::111111111111:user/a", fleet(1, func(int) map[string]string { return nil }))
	s.AddAccount("AKIAGROUPB000000000B", "arn:aws:iam::222222222222:user/b", fleet(1, func(int) map[string]string { return nil }))
	a, _ := clientFor(t, s, "AKIAGROUPA000000000A")
	b, _ := clientFor(t, s, "AKIAGROUPB000000000B")
	var last error
	for range 4 {
		_, last = a.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	}
	var apiErr smithy.APIError
	if !errors.As(last, &apiErr) || apiErr.ErrorCode() != "RequestLimitExceeded" {
		t.Fatalf("fourth call: %v, want RequestLimitExceeded", last)
	}
	if !(retry.ThrottleErrorCode{Codes: retry.DefaultThrottleErrorCodes}).IsErrorThrottle(last).Bool() {
		t.Errorf("the SDK does not see %v as throttling", last)
	}
	if _, err := b.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); err != nil {
		t.Errorf("the other credential is throttled too: %v", err)
	}
	if st := s.Stats(); st.Throttled != 1 || st.DescribeCalls != 5 {
		t.Errorf("stats %+v, want 5 calls, 1 throttled", st)
	}
	s.ThrottleAll("AKIAGROUPB000000000B", true)
	if _, err := b.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "RequestLimitExceeded" {
		t.Errorf("ThrottleAll: %v", err)
	}
}

func TestErrors(t *testing.T) {
	s := Start(Options{RefillRate: -1})
	defer s.Close()
	s.AddAccount("AKIAGROUPA000000000A", "arn:aws:iam::111111111111:user/a", fleet(1, func(int) map[string]string { return nil }))
	a, _ := clientFor(t, s, "AKIAGROUPA000000000A")
	cases := []struct {
		name string
		in   *ec2.DescribeInstancesInput
		code string
	}{
		{"dry run", &ec2.DescribeInstancesInput{DryRun: aws.Bool(true)}, "DryRunOperation"},
		{"page too large", &ec2.DescribeInstancesInput{MaxResults: aws.Int32(1001)}, "InvalidParameterValue"},
		{"unknown filter", &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}}, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		_, err := a.DescribeInstances(context.Background(), tc.in)
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	unknown, _ := clientFor(t, s, "AKIAUNKNOWN000000000")
	_, err := unknown.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AuthFailure" {
		t.Errorf("unknown key: %v, want AuthFailure", err)
	}
	if err := s.SetTags("AKIAGROUPA000000000A", "i-missing", nil); err == nil {
		t.Error("SetTags of a missing instance succeeded")
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"web", "web", true}, {"web", "Web", false}, {"w*", "web", true}, {"*b", "web", true},
		{"w?b", "web", true}, {"w?b", "wb", false}, {"*", "", true}, {"a*b*c", "aXbYc", true},
		{"a*b*c", "aXbY", false}, {`a\*`, "a*", true}, {`a\*`, "ab", false},
	}
	for _, tc := range cases {
		if got := glob(tc.p, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}
