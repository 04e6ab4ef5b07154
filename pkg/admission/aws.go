package admission

import (
	"context"
	"fmt"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// AWS is what the IAM evaluation asks AWS. FactoryAWS implements it with pkg/awsclients and
// pkg/policycheck/collect; unit tests fake it.
type AWS interface {
	// Principal resolves who the credentials of r are (sts:GetCallerIdentity, after assuming
	// r.RoleARN when set).
	Principal(ctx context.Context, r awsclients.Request) (awsclients.Principal, error)
	// Policies collects the IAM policies of principalARN, read with r's credentials (or the
	// auditor identity, as the collector is configured).
	Policies(ctx context.Context, r awsclients.Request, principalARN string) (*collect.Policies, error)
	// RolePolicies reads the policies (with the trust policy) of roleARN, a role an Upstream names,
	// with r's own credentials only — never the auditor identity, which must not read the policies
	// of any role a user writes into an Upstream.
	RolePolicies(ctx context.Context, r awsclients.Request, roleARN string) (*collect.Policies, error)
	// DryRun is the dry-run source: ec2:DescribeInstances with DryRun=true and r's credentials.
	DryRun(ctx context.Context, r awsclients.Request) collect.Result
	// Simulate is the aws-simulator source: iam:SimulatePrincipalPolicy for principalARN.
	Simulate(ctx context.Context, r awsclients.Request, principalARN string) collect.Result
}

// FactoryAWS is the real AWS: clients from an awsclients.Factory (cached per secret version,
// region and roleArn), policies from a collect.Collector.
type FactoryAWS struct {
	Factory   *awsclients.Factory
	Collector *collect.Collector
	// Simulator, when set, calls iam:SimulatePrincipalPolicy (usually the auditor identity's IAM
	// client); otherwise the Upstream's own IAM client does.
	Simulator collect.SimulateAPI
}

var _ AWS = (*FactoryAWS)(nil)

// Principal implements AWS.
func (f *FactoryAWS) Principal(ctx context.Context, r awsclients.Request) (awsclients.Principal, error) {
	c, err := f.Factory.Get(ctx, r)
	if err != nil {
		return awsclients.Principal{}, err
	}
	return c.Principal(ctx)
}

// Policies implements AWS.
func (f *FactoryAWS) Policies(ctx context.Context, r awsclients.Request, principalARN string) (*collect.Policies, error) {
	if f.Collector == nil {
		return nil, fmt.Errorf("collect the policies of %s: policy collection is not configured", principalARN)
	}
	c, err := f.Factory.Get(ctx, r)
	if err != nil {
		return nil, err
	}
	return f.Collector.Collect(ctx, collect.Request{
		PrincipalARN:     principalARN,
		CredentialKey:    c.Key.String(),
		Upstream:         c.IAM,
		CredentialSource: c.Key.CredentialSource(),
	})
}

// RolePolicies implements AWS.
func (f *FactoryAWS) RolePolicies(ctx context.Context, r awsclients.Request, roleARN string) (*collect.Policies, error) {
	c, err := f.Factory.Get(ctx, r)
	if err != nil {
		return nil, err
	}
	return collect.NewPerPrincipal(c.IAM, c.Key.CredentialSource()).Fetch(ctx, roleARN)
}

// DryRun implements AWS.
func (f *FactoryAWS) DryRun(ctx context.Context, r awsclients.Request) collect.Result {
	c, err := f.Factory.Get(ctx, r)
	if err != nil {
		return collect.Result{Source: collect.SourceDryRun, Decision: collect.Unknown, Reason: err.Error()}
	}
	return collect.DryRunDescribeInstances(ctx, c.EC2)
}

// Simulate implements AWS.
func (f *FactoryAWS) Simulate(ctx context.Context, r awsclients.Request, principalARN string) collect.Result {
	client := f.Simulator
	if client == nil {
		c, err := f.Factory.Get(ctx, r)
		if err != nil {
			return collect.Result{Source: collect.SourceAWSSimulator, Decision: collect.Unknown, Reason: err.Error()}
		}
		client = c.IAM
	}
	return collect.SimulateDescribeInstances(ctx, client, principalARN, r.Region)
}
