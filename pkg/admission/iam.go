package admission

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/go-logr/logr"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// IAM decisions as written to the ec2guard.io/iam-decision annotation.
const (
	DecisionAllowed      = verdict.DecisionAllowed
	DecisionImplicitDeny = verdict.DecisionImplicitDeny
	DecisionExplicitDeny = verdict.DecisionExplicitDeny
	DecisionUnknown      = verdict.DecisionUnknown
)

// IAM decision sources, as written to ec2guard.io/iam-source; SourceNone when no source decided.
const (
	SourceLocal        = verdict.SourceLocal
	SourceAWSSimulator = verdict.SourceAWSSimulator
	SourceDryRun       = verdict.SourceDryRun
	SourceNone         = verdict.SourceNone
)

// sourcePriority orders the sources by how much their answer is worth: the dry run is AWS itself,
// the simulator sees every policy IAM holds, the local engine only the collected ones.
func sourcePriority() []string { return []string{SourceDryRun, SourceAWSSimulator, SourceLocal} }

// Defaults of IAMOptions.
const (
	DefaultIAMDeadline   = 2 * time.Second
	DefaultIAMTTL        = 5 * time.Minute
	DefaultIAMUnknownTTL = 10 * time.Second
	DefaultIAMMaxEntries = 1024
)

// IAMOptions configures the IAM evaluation.
type IAMOptions struct {
	// Sources are the enabled decision sources (default: local only). aws-simulator and dry-run
	// make AWS calls with the Upstream's credentials (or the auditor's, for the simulator).
	Sources []string
	// Deadline bounds the time one admission spends waiting on AWS (default 2s).
	Deadline time.Duration
	// TTL is how long a decided result is reused (default 5m); UnknownTTL the same for an
	// undecided one (default 10s), so that the validating call reuses the mutating call's answer
	// without fixing an outage in place for long.
	TTL        time.Duration
	UnknownTTL time.Duration
	// MaxEntries bounds the number of cached results (default 1024).
	MaxEntries int
}

// SourceResult, CredentialsFailure and IAMResult are the one pipeline's (pkg/verdict): the
// evaluator produces the result, verdict.Of turns it into the decision, consistency and problems.
type (
	SourceResult       = verdict.SourceResult
	CredentialsFailure = verdict.CredentialsFailure
	IAMResult          = verdict.IAMResult
)

// IAMEvaluator computes IAM results and caches them.
type IAMEvaluator struct {
	aws     AWS
	engine  *policycheck.Engine
	opts    IAMOptions
	cache   *iamCache
	metrics *Metrics
	log     logr.Logger
}

// NewIAMEvaluator returns an evaluator over aws and engine (one engine per process).
func NewIAMEvaluator(aws AWS, engine *policycheck.Engine, opts IAMOptions, m *Metrics, log logr.Logger) (*IAMEvaluator, error) {
	if aws == nil || engine == nil {
		return nil, errors.New("IAM evaluator: AWS access and the IAM engine are required")
	}
	if len(opts.Sources) == 0 {
		opts.Sources = []string{SourceLocal}
	}
	for _, s := range opts.Sources {
		if s != SourceLocal && s != SourceAWSSimulator && s != SourceDryRun {
			return nil, fmt.Errorf("IAM source %q: must be %s, %s or %s", s, SourceLocal, SourceAWSSimulator, SourceDryRun)
		}
	}
	if opts.Deadline <= 0 {
		opts.Deadline = DefaultIAMDeadline
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultIAMTTL
	}
	if opts.UnknownTTL <= 0 {
		opts.UnknownTTL = DefaultIAMUnknownTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultIAMMaxEntries
	}
	c, err := newIAMCache(opts.MaxEntries, opts.TTL, opts.UnknownTTL, m)
	if err != nil {
		return nil, err
	}
	c.log = log
	return &IAMEvaluator{aws: aws, engine: engine, opts: opts, cache: c, metrics: m, log: log}, nil
}

// Result returns the IAM result for the credentials, region and roleArn of r. It returns within the
// deadline; past it the decision is unknown.
func (e *IAMEvaluator) Result(ctx context.Context, r awsclients.Request) *IAMResult {
	return e.cache.get(ctx, awsclients.KeyOf(r), e.opts.Deadline,
		func(ctx context.Context) *IAMResult { return e.compute(ctx, r) },
		verdict.Unknown)
}

// compute asks the principal, then every enabled source in parallel. ctx ends at the deadline.
func (e *IAMEvaluator) compute(ctx context.Context, r awsclients.Request) *IAMResult {
	key := awsclients.KeyOf(r)
	p, err := e.aws.Principal(ctx, r)
	if err != nil {
		res := e.principalFailed(ctx, r, err)
		e.record(key, res)
		return res
	}
	res := &IAMResult{Principal: p.ARN, DedicatedAccount: r.Secret != nil && r.Secret.DedicatedAccount}
	res.Sources, res.Local = e.runSources(ctx, r, p)
	verdict.Decide(res)
	e.record(key, res)
	return res
}

func (e *IAMEvaluator) record(key awsclients.Key, res *IAMResult) {
	e.metrics.IAMDecision(res.Decision, res.Source)
	e.log.V(1).Info("computed IAM result", "credentials", key.CredentialSource(), "region", key.Region,
		"roleArn", key.RoleARN, "principal", res.Principal, "decision", res.Decision, "source", res.Source,
		"credentialsRejected", res.Credentials != nil, "unknownReason", res.Unknown)
}

// principalFailed classifies a failure to resolve the principal.
func (e *IAMEvaluator) principalFailed(ctx context.Context, r awsclients.Request, err error) *IAMResult {
	var invalid *awsclients.InvalidCredentialsError
	if errors.As(err, &invalid) || awsclients.IsInvalidCredentials(err) {
		res := verdict.Unknown("AWS rejected the access key")
		res.Credentials = verdict.InvalidAccessKey(err.Error())
		return res
	}
	var assume *awsclients.AssumeRoleError
	if errors.As(err, &assume) && assume.Code != "" {
		msg := assume.Error()
		if why := e.explainAssumeRole(ctx, r); why != "" {
			msg += "; " + why
		}
		res := verdict.Unknown("roleArn cannot be assumed")
		res.Credentials = verdict.AssumeRoleDenied(msg, r.RoleARN)
		return res
	}
	e.log.V(1).Info("cannot resolve the AWS principal", "credentials", awsclients.KeyOf(r).CredentialSource(), "error", err.Error())
	return verdict.Unknown(e.awsFailureReason(ctx, err))
}

// awsFailureReason says briefly why AWS gave no answer: the deadline, an unreachable endpoint, or
// the error itself.
func (e *IAMEvaluator) awsFailureReason(ctx context.Context, err error) string {
	var netErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return fmt.Sprintf("AWS did not answer within the IAM deadline of %s", e.opts.Deadline)
	case errors.As(err, &netErr):
		return fmt.Sprintf("AWS is unreachable (%s %s: %v)", netErr.Op, netErr.Addr, netErr.Err)
	}
	return fmt.Sprintf("cannot resolve the AWS principal: %v", err)
}

// explainAssumeRole evaluates sts:AssumeRole locally — the base identity's policies and the role's
// trust policy — to say which side refuses. It returns "" when it cannot tell. The role's trust
// policy is read with the base identity's own credentials only (AWS.RolePolicies): the auditor
// never reads the policies of a role a user named.
func (e *IAMEvaluator) explainAssumeRole(ctx context.Context, r awsclients.Request) string {
	base := r
	base.RoleARN, base.SessionName = "", ""
	bp, err := e.aws.Principal(ctx, base)
	if err != nil {
		return ""
	}
	basePolicies, err := e.aws.Policies(ctx, base, bp.ARN)
	if err != nil {
		return ""
	}
	in, err := basePolicies.PolicySetInput()
	if err != nil {
		return ""
	}
	if rolePolicies, err := e.aws.RolePolicies(ctx, base, r.RoleARN); err == nil && rolePolicies.TrustPolicy != nil {
		if np, err := rolePolicies.TrustPolicy.NamedPolicy(); err == nil {
			in.Resource = &np
		}
	}
	ps, err := policycheck.NewPolicySet(in)
	if err != nil {
		return ""
	}
	account := ""
	if a, err := arn.Parse(r.RoleARN); err == nil {
		account = a.AccountID
	}
	d, err := e.engine.Evaluate(ctx, ps, policycheck.Request{
		Principal: bp.ARN, Action: "sts:AssumeRole", Resource: r.RoleARN, ResourceAccount: account,
		Context: assumeRoleContext(bp, r.Region),
	})
	if err != nil {
		return ""
	}
	return "ec2guard's evaluation of sts:AssumeRole for " + bp.ARN + ": " + d.Summary()
}

// assumeRoleContext is the request context of sts:AssumeRole by p from region.
func assumeRoleContext(p awsclients.Principal, region string) map[string]any {
	ctx := map[string]any{"aws:PrincipalArn": p.ARN, "aws:PrincipalAccount": p.Account}
	for _, k := range policycheck.RegionContextKeys() {
		ctx[k] = region
	}
	return ctx
}

// runSources runs every enabled source in parallel and returns their answers in priority order.
func (e *IAMEvaluator) runSources(ctx context.Context, r awsclients.Request, p awsclients.Principal) ([]SourceResult, *policycheck.Decision) {
	enabled := map[string]bool{}
	for _, s := range e.opts.Sources {
		enabled[s] = true
	}
	results := map[string]SourceResult{}
	var local *policycheck.Decision
	var mu sync.Mutex
	var wg sync.WaitGroup
	run := func(name string, f func() SourceResult) {
		if !enabled[name] {
			return
		}
		wg.Go(func() {
			sr := e.recovered(name, f)
			sr.Source = name
			mu.Lock()
			results[name] = sr
			mu.Unlock()
		})
	}
	run(SourceLocal, func() SourceResult {
		sr, d := e.local(ctx, r, p)
		mu.Lock()
		local = d
		mu.Unlock()
		return sr
	})
	run(SourceDryRun, func() SourceResult { return verdict.FromCollect(e.aws.DryRun(ctx, r)) })
	run(SourceAWSSimulator, func() SourceResult { return verdict.FromCollect(e.aws.Simulate(ctx, r, p.ARN)) })
	wg.Wait()

	out := make([]SourceResult, 0, len(results))
	for _, s := range sourcePriority() {
		if sr, ok := results[s]; ok {
			out = append(out, sr)
		}
	}
	return out, local
}

// recovered runs one source and turns a panic into an unknown answer (and a log record with the
// panic; the answer itself does not carry it).
func (e *IAMEvaluator) recovered(name string, f func() SourceResult) (sr SourceResult) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error(fmt.Errorf("panic: %v", p), "IAM source panicked", "source", name, "stack", string(debug.Stack()))
			sr = SourceResult{Decision: DecisionUnknown, Reason: "internal error in the " + name + " source (see the webhook's log)"}
		}
	}()
	return f()
}

// local is the local source: the engine over the collected policies (verdict.Local).
func (e *IAMEvaluator) local(ctx context.Context, r awsclients.Request, p awsclients.Principal) (SourceResult, *policycheck.Decision) {
	pols, err := e.aws.Policies(ctx, r, p.ARN)
	if err != nil {
		return verdict.LocalFailure("cannot collect the IAM policies of "+p.ARN, err), nil
	}
	in, err := pols.PolicySetInput()
	if err != nil {
		return verdict.LocalFailure("cannot read the IAM policies of "+p.ARN, err), nil
	}
	sr, d, _ := verdict.Local(ctx, e.engine, in, p.ARN, p.Account, r.Region, verdict.LocalOptions{})
	return sr, d
}
