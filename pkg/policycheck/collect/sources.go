package collect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/ec2guard/ec2guard/internal/deadline"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// Decision is a decision source's answer.
type Decision string

// Decisions.
const (
	Allowed Decision = "allowed"
	Denied  Decision = "denied"
	Unknown Decision = "unknown"
)

// Decision source names (docs/webhook.md, "IAM evaluation").
const (
	SourceLocal        = "local"
	SourceAWSSimulator = "aws-simulator"
	SourceDryRun       = "dry-run"
	// SourceNone is reported when no source decided.
	SourceNone = "none"
)

// Denial details, where the source can tell them apart.
const (
	DetailExplicitDeny = "explicitDeny"
	DetailImplicitDeny = "implicitDeny"
)

// Action is the action every source decides on.
const Action = "ec2:DescribeInstances"

// DefaultSourceTimeout bounds a source's AWS call under a context without a
// deadline.
const DefaultSourceTimeout = 10 * time.Second

// Result is one decision source's answer for ec2:DescribeInstances.
type Result struct {
	Source   string   `json:"source"`
	Decision Decision `json:"decision"`
	// Detail is DetailExplicitDeny or DetailImplicitDeny when known.
	Detail string `json:"detail,omitempty"`
	// Reason explains the decision, or why the source could not decide.
	Reason string `json:"reason"`
	// MatchedStatements name the statements that decided, where the source
	// reports them.
	MatchedStatements []string `json:"matchedStatements,omitempty"`
	// Err is the error behind an Unknown decision, for errors.As (e.g.
	// awsclients.IsInvalidCredentials); never serialised.
	Err error `json:"-"`
}

// SimulateDescribeInstances asks iam:SimulatePrincipalPolicy whether
// principalARN (an IAM user or role ARN) may call ec2:DescribeInstances on
// Resource "*" in region. client needs iam:SimulatePrincipalPolicy (often the
// auditor's). Errors become Unknown with the reason.
func SimulateDescribeInstances(ctx context.Context, client SimulateAPI, principalARN, region string) Result {
	res := Result{Source: SourceAWSSimulator}
	ctx, cancel := deadline.Default(ctx, DefaultSourceTimeout)
	defer cancel()
	in := &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(principalARN),
		ActionNames:     []string{Action},
		ResourceArns:    []string{"*"},
	}
	// The simulator gets the Upstream's region under policycheck.RegionContextKeys: DescribeInstances
	// is authorized against Resource "*" with only global keys and ec2:Region.
	for _, k := range policycheck.RegionContextKeys() {
		in.ContextEntries = append(in.ContextEntries, iamtypes.ContextEntry{
			ContextKeyName:   aws.String(k),
			ContextKeyType:   iamtypes.ContextKeyTypeEnumString,
			ContextKeyValues: []string{region},
		})
	}
	var results []iamtypes.EvaluationResult
	p := iam.NewSimulatePrincipalPolicyPaginator(client, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			res.Decision, res.Err = Unknown, err
			if IsAccessDenied(err) {
				res.Reason = fmt.Sprintf("iam:SimulatePrincipalPolicy for %s is denied to the identity that calls it: %v", principalARN, err)
			} else {
				res.Reason = fmt.Sprintf("iam:SimulatePrincipalPolicy for %s failed: %v", principalARN, err)
			}
			return res
		}
		results = append(results, out.EvaluationResults...)
	}
	for _, r := range results {
		if !strings.EqualFold(aws.ToString(r.EvalActionName), Action) {
			continue
		}
		for _, st := range r.MatchedStatements {
			res.MatchedStatements = append(res.MatchedStatements, statementName(st))
		}
		switch r.EvalDecision {
		case iamtypes.PolicyEvaluationDecisionTypeAllowed:
			res.Decision = Allowed
			res.Reason = fmt.Sprintf("the IAM policy simulator allows %s on * in %s", Action, region)
		case iamtypes.PolicyEvaluationDecisionTypeExplicitDeny:
			res.Decision, res.Detail = Denied, DetailExplicitDeny
			res.Reason = fmt.Sprintf("the IAM policy simulator finds an explicit deny of %s on * in %s", Action, region)
		default:
			res.Decision, res.Detail = Denied, DetailImplicitDeny
			res.Reason = fmt.Sprintf("no statement allows %s on * in %s (implicit deny, per the IAM policy simulator)", Action, region)
		}
		if len(r.MissingContextValues) > 0 {
			res.Reason += "; context keys the simulator lacked: " + strings.Join(r.MissingContextValues, ", ")
		}
		return res
	}
	res.Decision = Unknown
	res.Reason = fmt.Sprintf("iam:SimulatePrincipalPolicy returned no result for %s", Action)
	return res
}

func statementName(st iamtypes.Statement) string {
	s := aws.ToString(st.SourcePolicyId)
	if st.SourcePolicyType != "" {
		s = string(st.SourcePolicyType) + " " + s
	}
	if st.StartPosition != nil {
		s += fmt.Sprintf(" (line %d, column %d)", st.StartPosition.Line, st.StartPosition.Column)
	}
	return s
}

// DryRunDescribeInstances is the dry-run source: ec2:DescribeInstances with
// DryRun=true and the Upstream's own EC2 client — the ground truth, which also
// covers SCPs, RCPs and boundaries the collector cannot read.
func DryRunDescribeInstances(ctx context.Context, client ec2api.Client) Result {
	res := Result{Source: SourceDryRun}
	allowed, err := ec2api.DryRunDescribeInstances(ctx, client)
	switch {
	case err != nil:
		res.Decision, res.Err = Unknown, err
		res.Reason = err.Error()
		var unk *ec2api.UnknownError
		if errors.As(err, &unk) && (unk.Code == "AuthFailure" || unk.Code == "InvalidClientTokenId") {
			res.Reason = "the credentials are not valid (" + unk.Code + "), so the dry run cannot decide"
		}
	case allowed:
		res.Decision = Allowed
		res.Reason = "DryRunOperation: ec2:DescribeInstances would have succeeded"
	default:
		res.Decision = Denied
		res.Reason = "UnauthorizedOperation: ec2:DescribeInstances is denied to these credentials"
	}
	return res
}
