// Package awsclients turns an EC2 Upstream's credentials — a Gloo AWS secret,
// or the pod's own identity through the SDK default chain, optionally with a
// role assumed on top — into AWS clients (EC2, STS, IAM), caches them per
// secret version, region and role, and resolves who the principal is.
package awsclients

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/internal/deadline"
	ec2model "github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// EndpointEnv is the environment variable that overrides the AWS endpoint of
// every client (the emulator in tests and the demo). The binaries' flag
// --aws-endpoint sets the same option.
const EndpointEnv = "EC2GUARD_AWS_ENDPOINT"

// Defaults of Options.
const (
	DefaultMaxEntries   = 512
	DefaultCallTimeout  = 10 * time.Second
	DefaultPrincipalTTL = 5 * time.Minute
	// DefaultHTTPTimeout bounds one HTTP exchange, also the ones the SDK's
	// credential cache makes without the caller's deadline.
	DefaultHTTPTimeout = 30 * time.Second
	// credentialExpiryWindow refreshes assumed-role credentials this long
	// before they expire.
	credentialExpiryWindow = time.Minute
)

// EndpointFromEnv returns the value of EndpointEnv ("" when unset).
func EndpointFromEnv() string { return strings.TrimSpace(os.Getenv(EndpointEnv)) }

// Options configures a Factory. The zero value is usable.
type Options struct {
	// Endpoint, when set, is the base endpoint of every client (emulator
	// only: tests and the demo).
	Endpoint string
	// HTTPClient replaces the SDK's HTTP client (default: the SDK's
	// buildable client with DefaultHTTPTimeout). The clients hand it request
	// bodies as in-memory copies (OwnBodies).
	HTTPClient aws.HTTPClient
	// Retry configures the retryer of every client.
	Retry ec2api.RetryOptions
	// MaxEntries bounds the number of cached client sets.
	MaxEntries int
	// CallTimeout bounds calls made by this package under a context that has
	// no deadline.
	CallTimeout time.Duration
	// PrincipalTTL is how long a resolved principal is reused.
	PrincipalTTL time.Duration
	// Logger receives structured logs; never a secret value.
	Logger *slog.Logger
	// LoadOptions are extra options for config.LoadDefaultConfig, used for
	// the pod's default credential chain.
	LoadOptions []func(*config.LoadOptions) error
}

// SecretVersion is one version of a Gloo AWS secret with the credentials it
// holds (parsed by pkg/ec2).
type SecretVersion struct {
	UID             types.UID
	ResourceVersion string
	Credentials     ec2model.Credentials
	// DedicatedAccount is the secret owner's statement that its account holds only the intended
	// instances (ec2model.AnnotationSecretDedicatedAccount); part of this version, like the keys.
	DedicatedAccount bool
}

// NewSecretVersion pairs credentials parsed from s (ec2.ParseSecret or
// Upstream.CheckSecret) with s's identity and version.
func NewSecretVersion(s *corev1.Secret, creds ec2model.Credentials) *SecretVersion {
	return &SecretVersion{UID: s.UID, ResourceVersion: s.ResourceVersion, Credentials: creds,
		DedicatedAccount: ec2model.SecretDedicatedAccount(s.Annotations)}
}

// Request says which credentials an Upstream uses.
type Request struct {
	// Region of the Upstream; required.
	Region string
	// Secret is nil when the pod's own identity (SDK default chain) is used.
	Secret *SecretVersion
	// RoleARN, when set, is assumed on top of the base credentials.
	RoleARN string
	// SessionName overrides the derived role session name (see SessionName).
	SessionName string
}

// Key identifies a cached client set: a changed secret (new resourceVersion)
// is a new key, so the new credentials take effect at once.
type Key struct {
	SecretUID       types.UID
	SecretVersion   string
	Secret          types.NamespacedName // zero for the default chain
	Region          string
	RoleARN         string
	RoleSessionName string // empty without RoleARN
}

// String identifies the key in logs and singleflight groups (no secrets).
func (k Key) String() string {
	src := "default-chain"
	if k.SecretUID != "" {
		src = fmt.Sprintf("secret:%s@%s/%s", k.Secret, k.SecretUID, k.SecretVersion)
	}
	return fmt.Sprintf("%s|%s|%s|%s", src, k.Region, k.RoleARN, k.RoleSessionName)
}

// CredentialSource describes the base credentials: "secret ns/name" or
// "the pod's default AWS credentials".
func (k Key) CredentialSource() string {
	if k.SecretUID == "" && k.Secret == (types.NamespacedName{}) {
		return "the pod's default AWS credentials"
	}
	return "secret " + k.Secret.String()
}

// KeyOf returns the cache key of r.
func KeyOf(r Request) Key {
	k := Key{Region: r.Region, RoleARN: r.RoleARN}
	if r.Secret != nil {
		k.SecretUID = r.Secret.UID
		k.SecretVersion = r.Secret.ResourceVersion
		k.Secret = r.Secret.Credentials.Source
	}
	if r.RoleARN != "" {
		k.RoleSessionName = r.SessionName
		if k.RoleSessionName == "" {
			k.RoleSessionName = SessionName(k.Secret)
		}
	}
	return k
}

// Clients is a cached set of AWS clients for one Key.
type Clients struct {
	Key Key
	// DedicatedAccount: the secret's owner states that its account holds only the intended
	// instances (SecretVersion.DedicatedAccount; false for the default chain).
	DedicatedAccount bool
	// Config is the configuration the clients were built from; its
	// Credentials include the assumed role, when there is one.
	Config aws.Config
	EC2    *ec2.Client
	STS    *sts.Client
	IAM    *iam.Client

	maskedKeyID string
	ttl         time.Duration
	callTimeout time.Duration
	log         *slog.Logger

	principalMu sync.Mutex
	principal   *Principal
	resolvedAt  time.Time
	sf          singleflight.Group
}

// MaskedAccessKeyID is the base access key id, masked (AKIA****MPLE); empty
// for the default chain.
func (c *Clients) MaskedAccessKeyID() string { return c.maskedKeyID }

// Factory builds and caches client sets. It is safe for concurrent use.
type Factory struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	cache *lru.Cache[Key, *Clients]
	sf    singleflight.Group
}

// NewFactory returns a Factory with opts (defaults filled in).
func NewFactory(opts Options) (*Factory, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.PrincipalTTL <= 0 {
		opts.PrincipalTTL = DefaultPrincipalTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = awshttp.NewBuildableClient().WithTimeout(DefaultHTTPTimeout)
	}
	c, err := lru.New[Key, *Clients](opts.MaxEntries)
	if err != nil {
		return nil, fmt.Errorf("client cache of %d entries: %w", opts.MaxEntries, err)
	}
	return &Factory{opts: opts, log: opts.Logger, cache: c}, nil
}

// Len is the number of cached client sets.
func (f *Factory) Len() int { return f.cache.Len() }

// Get returns the client set for r, building it on first use. A request for
// a new version of a secret evicts the cached sets of its older versions.
// Building a set makes no AWS call (credentials are fetched on first use).
func (f *Factory) Get(ctx context.Context, r Request) (*Clients, error) {
	if r.Region == "" {
		return nil, fmt.Errorf("aws clients: region is empty")
	}
	if r.Secret != nil && r.Secret.UID == "" {
		return nil, fmt.Errorf("aws clients for secret %s: the secret has no UID", r.Secret.Credentials.Source)
	}
	k := KeyOf(r)
	if c, ok := f.cache.Get(k); ok {
		return c, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("aws clients for %s: %w", k, err)
	}
	// Concurrent callers share one build; each waits only as long as its own context allows, and
	// the build does not fail for the others when the caller that started it gives up (it is
	// bounded by the call timeout instead).
	ch := f.sf.DoChan(k.String(), func() (any, error) {
		if c, ok := f.cache.Get(k); ok {
			return c, nil
		}
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.opts.CallTimeout)
		defer cancel()
		c, err := f.build(bctx, k, r)
		if err != nil {
			return nil, err
		}
		f.add(k, c)
		return c, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("aws clients for %s: %w", k, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Clients), nil
	}
}

// add caches c under k and evicts other versions of the same secret.
func (f *Factory) add(k Key, c *Clients) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k.SecretUID != "" {
		for _, old := range f.cache.Keys() {
			if old.SecretUID == k.SecretUID && old.SecretVersion != k.SecretVersion {
				f.cache.Remove(old)
				f.log.Info("dropped AWS clients of an older secret version",
					"secret", k.Secret.String(), "oldResourceVersion", old.SecretVersion, "resourceVersion", k.SecretVersion)
			}
		}
	}
	f.cache.Add(k, c)
}

func (f *Factory) build(ctx context.Context, k Key, r Request) (*Clients, error) {
	cfg, masked, err := f.baseConfig(ctx, r)
	if err != nil {
		return nil, err
	}
	if r.RoleARN != "" {
		stsBase := sts.NewFromConfig(cfg)
		provider := stscreds.NewAssumeRoleProvider(stsBase, r.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = k.RoleSessionName
		})
		cfg.Credentials = aws.NewCredentialsCache(provider, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = credentialExpiryWindow
		})
	}
	c := &Clients{
		Key:              k,
		DedicatedAccount: r.Secret != nil && r.Secret.DedicatedAccount,
		Config:           cfg,
		EC2:              ec2.NewFromConfig(cfg),
		STS:              sts.NewFromConfig(cfg),
		IAM:              iam.NewFromConfig(cfg),
		maskedKeyID:      masked,
		ttl:              f.opts.PrincipalTTL,
		callTimeout:      f.opts.CallTimeout,
		log:              f.log,
	}
	f.log.Info("built AWS clients", "credentials", k.CredentialSource(), "accessKeyId", masked,
		"region", k.Region, "roleArn", k.RoleARN, "roleSessionName", k.RoleSessionName,
		"endpointOverride", f.opts.Endpoint != "")
	return c, nil
}

// baseConfig is the configuration with the base credentials: the secret's
// static keys, or the SDK default chain.
func (f *Factory) baseConfig(ctx context.Context, r Request) (aws.Config, string, error) {
	retryer := func() aws.Retryer { return ec2api.NewRetryer(f.opts.Retry) }
	if r.Secret != nil {
		creds := r.Secret.Credentials
		cfg := aws.Config{
			Region:      r.Region,
			Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey(), creds.SessionToken()),
			HTTPClient:  OwnBodies(f.opts.HTTPClient),
			Retryer:     retryer,
		}
		if f.opts.Endpoint != "" {
			cfg.BaseEndpoint = aws.String(f.opts.Endpoint)
		}
		return cfg, creds.MaskedAccessKeyID(), nil
	}
	lo := []func(*config.LoadOptions) error{
		config.WithRegion(r.Region),
		config.WithHTTPClient(f.opts.HTTPClient),
		config.WithRetryer(retryer),
	}
	if f.opts.Endpoint != "" {
		// LoadOptions are among the config sources the SDK consults for
		// service endpoints, so the STS client of the web-identity (IRSA)
		// provider goes to the override as well.
		lo = append(lo, config.WithBaseEndpoint(f.opts.Endpoint))
	}
	lo = append(lo, f.opts.LoadOptions...)
	ctx, cancel := deadline.Default(ctx, f.opts.CallTimeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return aws.Config{}, "", fmt.Errorf("load the pod's default AWS configuration for region %s: %w", r.Region, err)
	}
	// Wrapped after loading: the loader adds AWS_CA_BUNDLE to a *BuildableClient only.
	cfg.HTTPClient = OwnBodies(cfg.HTTPClient)
	return cfg, "", nil
}

// LoopbackOnlyHTTPClient returns an HTTP client that refuses to connect
// anywhere but a loopback address. Tests pass it as Options.HTTPClient so no
// code path — the default chain included — can reach real AWS.
func LoopbackOnlyHTTPClient() aws.HTTPClient {
	return awshttp.NewBuildableClient().
		WithTimeout(DefaultHTTPTimeout).
		WithTransportOptions(func(t *http.Transport) {
			t.Proxy = nil
			t.DialContext = loopbackDialer(t.DialContext)
		})
}
