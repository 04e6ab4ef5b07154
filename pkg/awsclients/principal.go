package awsclients

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Principal types.
const (
	PrincipalUser          = "user"
	PrincipalRole          = "role"
	PrincipalRoot          = "root"
	PrincipalFederatedUser = "federated-user"
	PrincipalUnknown       = "unknown"
)

// Principal is the IAM identity behind a set of credentials.
type Principal struct {
	// ARN is the IAM ARN whose policies decide: the user's ARN, or for an
	// assumed role the role's ARN arn:PART:iam::ACCT:role/NAME. STS ARNs do
	// not carry the role's path, so a role with a path gets the path-less ARN
	// here; GetRole (policy collection) finds the real one.
	ARN string
	// CallerARN is the ARN sts:GetCallerIdentity returned.
	CallerARN string
	Account   string
	UserID    string
	// Type is one of the Principal* constants.
	Type string
	// Name is the user or role name (without path).
	Name string
	// SessionName is the role session name of an assumed role.
	SessionName string
}

// ParseCallerARN maps the ARN returned by sts:GetCallerIdentity to the IAM
// principal whose policies apply.
func ParseCallerARN(callerARN string) (Principal, error) {
	a, err := arn.Parse(callerARN)
	if err != nil {
		return Principal{}, fmt.Errorf("caller ARN %q: %w", callerARN, err)
	}
	p := Principal{ARN: callerARN, CallerARN: callerARN, Account: a.AccountID, Type: PrincipalUnknown}
	kind, rest, _ := strings.Cut(a.Resource, "/")
	switch {
	case a.Service == "sts" && kind == "assumed-role":
		role, session, ok := strings.Cut(rest, "/")
		if !ok || role == "" {
			return Principal{}, fmt.Errorf("caller ARN %q: assumed-role ARN without role/session", callerARN)
		}
		p.Type, p.Name, p.SessionName = PrincipalRole, role, session
		p.ARN = arn.ARN{Partition: a.Partition, Service: "iam", AccountID: a.AccountID, Resource: "role/" + role}.String()
	case a.Service == "sts" && kind == "federated-user":
		p.Type, p.Name = PrincipalFederatedUser, rest
	case a.Service == "iam" && kind == "user":
		p.Type, p.Name = PrincipalUser, rest[strings.LastIndex(rest, "/")+1:]
	case a.Service == "iam" && kind == "role":
		p.Type, p.Name = PrincipalRole, rest[strings.LastIndex(rest, "/")+1:]
	case a.Service == "iam" && a.Resource == "root":
		p.Type = PrincipalRoot
	}
	return p, nil
}

// Principal resolves who the client set's credentials belong to with
// sts:GetCallerIdentity (which needs no permission). A success is reused for
// the factory's PrincipalTTL; concurrent callers share one call. Invalid keys
// give *InvalidCredentialsError, a role that cannot be assumed
// *AssumeRoleError. A context without a deadline gets the CallTimeout.
func (c *Clients) Principal(ctx context.Context) (Principal, error) {
	c.principalMu.Lock()
	if c.principal != nil && time.Since(c.resolvedAt) < c.ttl {
		p := *c.principal
		c.principalMu.Unlock()
		return p, nil
	}
	c.principalMu.Unlock()

	ch := c.sf.DoChan("principal", func() (any, error) {
		// The shared call must not be cut short by whichever caller came
		// first; it has its own deadline.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.callTimeout)
		defer cancel()
		p, err := c.resolvePrincipal(cctx)
		if err != nil {
			return nil, err
		}
		c.principalMu.Lock()
		c.principal, c.resolvedAt = &p, time.Now()
		c.principalMu.Unlock()
		return p, nil
	})
	select {
	case <-ctx.Done():
		return Principal{}, fmt.Errorf("resolve the principal of %s: %w", c.Key.CredentialSource(), ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return Principal{}, res.Err
		}
		return res.Val.(Principal), nil
	}
}

// ForgetPrincipal drops the cached principal, so the next Principal call asks
// STS again.
func (c *Clients) ForgetPrincipal() {
	c.principalMu.Lock()
	defer c.principalMu.Unlock()
	c.principal = nil
}

func (c *Clients) resolvePrincipal(ctx context.Context) (Principal, error) {
	// Credentials first: an assumed role's failure is then told apart from
	// an invalid base key.
	if _, err := c.Config.Credentials.Retrieve(ctx); err != nil {
		return Principal{}, c.credentialsError(err)
	}
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Principal{}, c.callError("sts:GetCallerIdentity", err)
	}
	p, err := ParseCallerARN(aws.ToString(out.Arn))
	if err != nil {
		return Principal{}, fmt.Errorf("principal of %s: %w", c.Key.CredentialSource(), err)
	}
	p.UserID = aws.ToString(out.UserId)
	if p.Account == "" {
		p.Account = aws.ToString(out.Account)
	}
	c.log.Debug("resolved AWS principal", "credentials", c.Key.CredentialSource(), "accessKeyId", c.maskedKeyID,
		"principal", p.ARN, "callerArn", p.CallerARN, "region", c.Key.Region)
	return p, nil
}

// credentialsError explains a failure to obtain credentials: the default
// chain found none, the base key is invalid, or the role cannot be assumed.
func (c *Clients) credentialsError(err error) error {
	if code, ok := invalidKeyCode(err); ok {
		return &InvalidCredentialsError{Secret: c.Key.Secret, MaskedKeyID: c.maskedKeyID, Code: code, Err: err}
	}
	if c.Key.RoleARN != "" {
		code, msg := apiErrorCode(err)
		return &AssumeRoleError{RoleARN: c.Key.RoleARN, Source: c.Key.CredentialSource(), Code: code, Message: msg, Err: err}
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("get credentials from %s: %w", c.Key.CredentialSource(), ctxErr)
	}
	return fmt.Errorf("get credentials from %s: %w", c.Key.CredentialSource(), err)
}

// callError classifies the error of an AWS call made with the credentials.
func (c *Clients) callError(api string, err error) error {
	if code, ok := invalidKeyCode(err); ok {
		return &InvalidCredentialsError{Secret: c.Key.Secret, MaskedKeyID: c.maskedKeyID, Code: code, Err: err}
	}
	return fmt.Errorf("%s with %s: %w", api, c.Key.CredentialSource(), err)
}

func contextError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return context.Canceled
	}
	return nil
}

// loopbackDialer wraps dial so that it connects only to loopback hosts.
func loopbackDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("loopback-only client: address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("loopback-only client: refusing to connect to %s (only the emulator on loopback may be reached)", host)
		}
		return dial(ctx, network, addr)
	}
}
