package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ec2guard/ec2guard/internal/commonflags"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/internal/metricsserving"
	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// config is the webhook's configuration from its flags.
type config struct {
	kube kubeconfig.Options

	webhookHost string
	webhookPort int
	certDir     string
	certName    string
	keyName     string
	enableHTTP2 bool

	metricsAddr   string
	metricsSecure bool
	healthAddr    string

	secretNamespaces    []string
	secretLabelSelector string

	// podIdentityNamespaces may use the webhook's own AWS identity (Upstreams without secretRef).
	podIdentityNamespaces    ec2.NamespaceList
	podIdentityNamespacesRaw string

	enforcement admission.Enforcement

	accessAllowedTTL time.Duration
	accessDeniedTTL  time.Duration

	iamDeadline   time.Duration
	iamCacheTTL   time.Duration
	iamUnknownTTL time.Duration
	iamSources    []string
	iamReader     string
	iamAuditor    bool
	iamCollection string

	awsEndpoint string

	log commonflags.Logging

	shutdownTimeout time.Duration

	certRotation certRotationConfig
}

// enforcementFlag is one --enforce-CHECK flag.
type enforcementFlag struct {
	check admission.Check
	cfg   *config
}

func (f *enforcementFlag) String() string {
	if f.cfg == nil {
		return string(admission.DefaultAction(f.check))
	}
	return string(f.cfg.enforcement.Action(f.check))
}

func (f *enforcementFlag) Set(v string) error {
	a, err := admission.ParseAction(v)
	if err != nil {
		return err
	}
	e, err := f.cfg.enforcement.With(f.check, a)
	if err != nil {
		return err
	}
	f.cfg.enforcement = e
	return nil
}

// iamReadWithFlag is --iam-read-with: it sets who reads IAM (the Upstream's credentials or the
// auditor) and whether the pod's own identity is the auditor, as the discoverer's flag of the
// same name does.
type iamReadWithFlag struct{ cfg *config }

func (f iamReadWithFlag) String() string {
	switch {
	case f.cfg == nil:
		return commonflags.ReadWithUpstream
	case f.cfg.iamReader == collect.ReadWithAuditor:
		return commonflags.ReadWithAuditor
	case f.cfg.iamAuditor:
		return commonflags.ReadWithUpstreamThenAuditor
	}
	return commonflags.ReadWithUpstream
}

func (f iamReadWithFlag) Set(v string) error {
	if err := commonflags.ValidateIAMReadWith(v); err != nil {
		return err
	}
	switch v {
	case commonflags.ReadWithUpstream:
		f.cfg.iamReader, f.cfg.iamAuditor = collect.ReadWithUpstream, false
	case commonflags.ReadWithUpstreamThenAuditor:
		f.cfg.iamReader, f.cfg.iamAuditor = collect.ReadWithUpstream, true
	case commonflags.ReadWithAuditor:
		f.cfg.iamReader, f.cfg.iamAuditor = collect.ReadWithAuditor, true
	}
	return nil
}

// listFlag is a comma-separated list.
type listFlag struct{ list *[]string }

func (f listFlag) String() string {
	if f.list == nil {
		return ""
	}
	return strings.Join(*f.list, ",")
}

func (f listFlag) Set(v string) error {
	*f.list = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*f.list = append(*f.list, s)
		}
	}
	return nil
}

// enforceHelp is the help of --enforce-CHECK, from the check's declaration (pkg/codes).
func enforceHelp(ci codes.CheckInfo) string {
	return fmt.Sprintf("deny, warn or off: %s (%s)", ci.Covers, ci.Check.CodeList())
}

// parseFlags parses the command line. Errors name the flag and what is wrong.
func parseFlags(args []string, output io.Writer) (*config, error) {
	cfg := &config{kube: kubeconfig.DefaultOptions(), log: commonflags.DefaultLogging(), enforcement: admission.DefaultEnforcement(), iamSources: []string{admission.SourceLocal}}
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "Usage: webhook [flags]\n\nec2guard's admission webhook for Gloo EC2 Upstreams (docs/webhook.md).\n\nFlags:\n")
		fs.PrintDefaults()
	}

	cfg.kube.AddFlags(fs)
	fs.StringVar(&cfg.webhookHost, "webhook-host", "", "address the webhook server listens on (default: all)")
	fs.IntVar(&cfg.webhookPort, "webhook-port", 9443, "port of the webhook server (TLS)")
	fs.StringVar(&cfg.certDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory of the serving certificate; reloaded when the files change")
	fs.StringVar(&cfg.certName, "cert-name", "tls.crt", "serving certificate file in --cert-dir")
	fs.StringVar(&cfg.keyName, "key-name", "tls.key", "serving key file in --cert-dir")
	fs.BoolVar(&cfg.enableHTTP2, "enable-http2", false, "serve HTTP/2 on the webhook port (off by default: HTTP/2 rapid-reset and stream-cancellation attacks)")
	fs.StringVar(&cfg.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus /metrics endpoint; \"0\" disables it")
	metricsserving.AddSecureFlag(fs, &cfg.metricsSecure)
	fs.StringVar(&cfg.healthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz; \"0\" disables them")
	fs.Var(listFlag{&cfg.secretNamespaces}, "secret-namespaces", "comma-separated namespaces to read (and cache) Secrets from; empty: all namespaces")
	fs.StringVar(&cfg.podIdentityNamespacesRaw, "pod-identity-namespaces", "", "comma-separated namespaces whose Upstreams may omit secretRef and so use the webhook's own AWS identity (IRSA, pod identity); \"*\" for all; empty: none ("+string(codes.PodIdentityNotAllowed)+")")
	fs.StringVar(&cfg.secretLabelSelector, "secret-label-selector", "", "label selector limiting the cached Secrets (e.g. app=gloo); Secrets outside it read as missing")
	for _, ci := range codes.Checks() {
		fs.Var(&enforcementFlag{check: ci.Check, cfg: cfg}, "enforce-"+string(ci.Check), enforceHelp(ci))
	}
	fs.DurationVar(&cfg.accessAllowedTTL, "access-cache-allowed-ttl", admission.DefaultAccessAllowedTTL, "how long a SubjectAccessReview that allowed a user to get a secret is reused for the same user, groups, extra and secret; 0 disables")
	fs.DurationVar(&cfg.accessDeniedTTL, "access-cache-denied-ttl", admission.DefaultAccessDeniedTTL, "how long a SubjectAccessReview that denied it is reused; 0 disables")
	fs.DurationVar(&cfg.iamDeadline, "iam-deadline", admission.DefaultIAMDeadline, "longest one admission request waits on AWS; past it the IAM decision is unknown (keep it below the webhook configuration's timeoutSeconds)")
	fs.DurationVar(&cfg.iamCacheTTL, "iam-cache-ttl", admission.DefaultIAMTTL, "how long an IAM result is reused for the same secret version, region and roleArn")
	fs.DurationVar(&cfg.iamUnknownTTL, "iam-unknown-ttl", admission.DefaultIAMUnknownTTL, "how long an unknown IAM result is reused")
	fs.Var(listFlag{&cfg.iamSources}, "iam-sources", "comma-separated IAM decision sources: local (engine over collected policies), aws-simulator (iam:SimulatePrincipalPolicy), dry-run (ec2:DescribeInstances DryRun)")
	cfg.iamReader = collect.ReadWithUpstream
	fs.Var(iamReadWithFlag{cfg}, "iam-read-with", commonflags.IAMReadWithUsage)
	fs.StringVar(&cfg.iamReader, "iam-reader", collect.ReadWithUpstream, "deprecated: use --iam-read-with")
	fs.BoolVar(&cfg.iamAuditor, "iam-auditor", false, "deprecated: use --iam-read-with (auditor or upstream-then-auditor)")
	fs.StringVar(&cfg.iamCollection, "iam-collection", collect.StrategyPerPrincipal, "how the auditor reads IAM: per-principal or account-snapshot (GetAccountAuthorizationDetails, refreshed in the background)")
	commonflags.AddAWSEndpoint(fs, &cfg.awsEndpoint)
	cfg.log.AddFlags(fs)
	commonflags.AddShutdownTimeout(fs, &cfg.shutdownTimeout)
	fs.DurationVar(&cfg.shutdownTimeout, "graceful-shutdown-timeout", 30*time.Second, "deprecated: use --shutdown-timeout")

	cfg.certRotation.addFlags(fs)

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return cfg, cfg.validate()
}

// validate checks the values that flag parsing alone cannot.
func (c *config) validate() error {
	var errs []error
	if err := c.kube.Validate(); err != nil {
		errs = append(errs, err)
	}
	if list, err := ec2.ParseNamespaceList(c.podIdentityNamespacesRaw); err != nil {
		errs = append(errs, fmt.Errorf("--pod-identity-namespaces: %w", err))
	} else {
		c.podIdentityNamespaces = list
	}
	if c.webhookPort < 1 || c.webhookPort > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d: must be 1-65535", c.webhookPort))
	}
	if c.accessAllowedTTL < 0 {
		errs = append(errs, fmt.Errorf("--access-cache-allowed-ttl %s: must not be negative", c.accessAllowedTTL))
	}
	if c.accessDeniedTTL < 0 {
		errs = append(errs, fmt.Errorf("--access-cache-denied-ttl %s: must not be negative", c.accessDeniedTTL))
	}
	if c.iamDeadline <= 0 {
		errs = append(errs, fmt.Errorf("--iam-deadline %s: must be positive", c.iamDeadline))
	}
	if c.iamCacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("--iam-cache-ttl %s: must be positive", c.iamCacheTTL))
	}
	if c.iamUnknownTTL <= 0 {
		errs = append(errs, fmt.Errorf("--iam-unknown-ttl %s: must be positive", c.iamUnknownTTL))
	}
	if len(c.iamSources) == 0 {
		errs = append(errs, errors.New("--iam-sources: at least one source is needed"))
	}
	for _, s := range c.iamSources {
		if s != admission.SourceLocal && s != admission.SourceAWSSimulator && s != admission.SourceDryRun {
			errs = append(errs, fmt.Errorf("--iam-sources: %q is not local, aws-simulator or dry-run", s))
		}
	}
	switch c.iamReader {
	case collect.ReadWithUpstream:
	case collect.ReadWithAuditor:
		if !c.iamAuditor {
			errs = append(errs, errors.New("--iam-reader=auditor needs --iam-auditor (the pod's own AWS identity)"))
		}
	default:
		errs = append(errs, fmt.Errorf("--iam-reader %q: must be upstream or auditor", c.iamReader))
	}
	switch c.iamCollection {
	case collect.StrategyPerPrincipal:
	case collect.StrategyAccountSnapshot:
		if !c.iamAuditor {
			errs = append(errs, errors.New("--iam-collection=account-snapshot needs --iam-auditor (the snapshot is read with the pod's own AWS identity)"))
		}
	default:
		errs = append(errs, fmt.Errorf("--iam-collection %q: must be per-principal or account-snapshot", c.iamCollection))
	}
	if err := c.log.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.shutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %s: must not be negative", c.shutdownTimeout))
	}
	if err := c.certRotation.validate(c.certDir, c.certName, c.keyName); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// accessCacheOptions maps the flags to the cache's options (a 0 flag disables: a negative TTL).
func (c *config) accessCacheOptions() admission.AccessCacheOptions {
	off := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return admission.AccessCacheOptions{AllowedTTL: off(c.accessAllowedTTL), DeniedTTL: off(c.accessDeniedTTL)}
}
