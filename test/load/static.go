package main

import (
	"context"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// staticAWS answers the IAM evaluation from memory: one IAM user with one inline policy. With warm
// caches the webhook does not ask it again; it only fills the IAM cache once.
type staticAWS struct {
	principal awsclients.Principal
	policy    string
}

func (s staticAWS) Principal(context.Context, awsclients.Request) (awsclients.Principal, error) {
	return s.principal, nil
}

func (s staticAWS) Policies(_ context.Context, _ awsclients.Request, principalARN string) (*collect.Policies, error) {
	return &collect.Policies{
		Principal: principalARN, PrincipalType: "user", Account: s.principal.Account,
		Identity: []collect.Document{{Origin: collect.Origin{Type: collect.Inline, AttachedTo: "user/" + s.principal.Name, Name: "fixed-policy"}, JSON: s.policy}},
	}, nil
}

func (s staticAWS) RolePolicies(_ context.Context, _ awsclients.Request, roleARN string) (*collect.Policies, error) {
	return nil, &collect.NotFoundError{Principal: roleARN, Where: "the load test's static AWS"}
}

func (s staticAWS) DryRun(context.Context, awsclients.Request) collect.Result {
	return collect.Result{Source: collect.SourceDryRun, Decision: collect.Unknown, Reason: "not used"}
}

func (s staticAWS) Simulate(context.Context, awsclients.Request, string) collect.Result {
	return collect.Result{Source: collect.SourceAWSSimulator, Decision: collect.Unknown, Reason: "not used"}
}
