// Package ec2api wraps the two EC2 calls ec2guard makes: the paginated
// listing of running instances (for the discoverer) and the DryRun probe of
// ec2:DescribeInstances (the ground-truth IAM decision source).
package ec2api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/ec2guard/ec2guard/internal/deadline"
)

// PageSize is the MaxResults used for every DescribeInstances page. EC2 puts
// unfiltered, unpaginated calls into a smaller throttling bucket, so listing
// always paginates with the largest page EC2 allows.
const PageSize int32 = 1000

// MaxPages bounds one listing: at most MaxPages pages of PageSize instances (500,000 running
// instances, far above EC2's default per-region quotas) are read into memory. A listing beyond it
// fails, naming the bound, instead of growing without limit.
const MaxPages = 500

// DefaultTimeout bounds a call made under a context without a deadline.
const DefaultTimeout = 60 * time.Second

// StateFilterName is the EC2 API filter on the instance state.
const StateFilterName = "instance-state-name"

// Client is the part of *ec2.Client this package calls; tests and callers may
// fake it.
type Client interface {
	DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

var _ Client = (*ec2.Client)(nil)

// Instance is what discovery needs to know about one running instance.
type Instance struct {
	ID               string
	PrivateIPv4      string
	PublicIPv4       string
	IPv6             string // first IPv6 address, if any
	AvailabilityZone string
	State            string
	Tags             map[string]string
}

// ListRunningInstances lists every running instance the client can see in its
// region that matches filters (EC2 API filters, typically built by pkg/ec2).
// Any instance-state-name filter in filters is replaced by
// instance-state-name=running. It returns the instances, the number of
// DescribeInstances pages fetched, and an error naming the page that failed.
// A context without a deadline gets DefaultTimeout.
func ListRunningInstances(ctx context.Context, client Client, filters []ec2types.Filter, optFns ...func(*ec2.Options)) ([]Instance, int, error) {
	ctx, cancel := deadline.Default(ctx, DefaultTimeout)
	defer cancel()

	in := &ec2.DescribeInstancesInput{Filters: runningFilters(filters)}
	p := ec2.NewDescribeInstancesPaginator(client, in, func(o *ec2.DescribeInstancesPaginatorOptions) {
		o.Limit = PageSize
		o.StopOnDuplicateToken = true
	})
	var out []Instance
	pages := 0
	for p.HasMorePages() {
		if pages == MaxPages {
			return nil, pages, fmt.Errorf("ec2:DescribeInstances: more than %d pages of %d instances; ec2guard lists at most that many with one set of credentials in one region: use credentials that see fewer instances", MaxPages, PageSize)
		}
		page, err := p.NextPage(ctx, optFns...)
		if err != nil {
			return nil, pages, fmt.Errorf("ec2:DescribeInstances page %d: %w", pages+1, err)
		}
		pages++
		for _, r := range page.Reservations {
			for i := range r.Instances {
				inst := &r.Instances[i]
				if inst.State == nil || inst.State.Name != ec2types.InstanceStateNameRunning {
					continue // the state filter is authoritative in AWS; this guards emulators
				}
				out = append(out, convert(inst))
			}
		}
	}
	return out, pages, nil
}

// runningFilters returns a copy of filters whose state filter is exactly
// instance-state-name=running.
func runningFilters(filters []ec2types.Filter) []ec2types.Filter {
	out := make([]ec2types.Filter, 0, len(filters)+1)
	out = append(out, ec2types.Filter{Name: aws.String(StateFilterName), Values: []string{string(ec2types.InstanceStateNameRunning)}})
	for _, f := range filters {
		if aws.ToString(f.Name) == StateFilterName {
			continue
		}
		out = append(out, ec2types.Filter{Name: f.Name, Values: append([]string(nil), f.Values...)})
	}
	return out
}

func convert(inst *ec2types.Instance) Instance {
	i := Instance{
		ID:          aws.ToString(inst.InstanceId),
		PrivateIPv4: aws.ToString(inst.PrivateIpAddress),
		PublicIPv4:  aws.ToString(inst.PublicIpAddress),
		IPv6:        aws.ToString(inst.Ipv6Address),
		Tags:        make(map[string]string, len(inst.Tags)),
	}
	if inst.State != nil {
		i.State = string(inst.State.Name)
	}
	if inst.Placement != nil {
		i.AvailabilityZone = aws.ToString(inst.Placement.AvailabilityZone)
	}
	if i.IPv6 == "" {
		i.IPv6 = firstIPv6(inst.NetworkInterfaces)
	}
	for _, t := range inst.Tags {
		i.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return i
}

func firstIPv6(nics []ec2types.InstanceNetworkInterface) string {
	for _, n := range nics {
		for _, a := range n.Ipv6Addresses {
			if v := aws.ToString(a.Ipv6Address); v != "" {
				return v
			}
		}
	}
	return ""
}

// Error codes of the DryRun probe.
const (
	CodeDryRunOperation       = "DryRunOperation"
	CodeUnauthorizedOperation = "UnauthorizedOperation"
	// CodeAccessDenied is what moto answers for EC2 where AWS says
	// UnauthorizedOperation; both mean the request was denied.
	CodeAccessDenied = "AccessDenied"
)

// UnknownError is returned by DryRunDescribeInstances when the answer is
// neither "would have succeeded" nor "unauthorized": the decision is unknown.
type UnknownError struct {
	Code string // AWS error code, empty when the call never got an AWS answer
	Err  error
}

func (e *UnknownError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("dry-run of ec2:DescribeInstances could not decide (AWS error %s): %v", e.Code, e.Err)
	}
	return fmt.Sprintf("dry-run of ec2:DescribeInstances could not decide: %v", e.Err)
}

func (e *UnknownError) Unwrap() error { return e.Err }

// DryRunDescribeInstances asks EC2 whether the client's credentials may call
// DescribeInstances, with DryRun=true. DryRunOperation means allowed (true,
// nil); UnauthorizedOperation means denied (false, nil); anything else —
// throttling that outlasts the retries, invalid credentials, a network error,
// the context's deadline — is (false, *UnknownError). A context without a
// deadline gets DefaultTimeout.
func DryRunDescribeInstances(ctx context.Context, client Client, optFns ...func(*ec2.Options)) (bool, error) {
	ctx, cancel := deadline.Default(ctx, DefaultTimeout)
	defer cancel()

	_, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		DryRun:     aws.Bool(true),
		MaxResults: aws.Int32(5), // the smallest page EC2 accepts; keeps the paginated throttle bucket
	}, optFns...)
	if err == nil {
		// EC2 always answers a DryRun with an error; success means the
		// endpoint ignored DryRun, so it proves the call is allowed.
		return true, nil
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case CodeDryRunOperation:
			return true, nil
		case CodeUnauthorizedOperation, CodeAccessDenied:
			return false, nil
		}
		return false, &UnknownError{Code: apiErr.ErrorCode(), Err: err}
	}
	return false, &UnknownError{Err: err}
}
