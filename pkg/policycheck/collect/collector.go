package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
)

// Collector defaults.
const (
	DefaultTTL          = 5 * time.Minute
	DefaultMaxEntries   = 1024
	DefaultFetchTimeout = 30 * time.Second
)

// Options configures a Collector.
type Options struct {
	// ReadWith chooses whose credentials read IAM: ReadWithUpstream (the
	// Upstream's own, falling back to Auditor on AccessDenied) or
	// ReadWithAuditor (always Auditor).
	ReadWith string
	// Auditor reads IAM with ec2guard's own identity (per-principal or
	// snapshot). Required for ReadWithAuditor; optional fallback otherwise.
	Auditor Fetcher
	// TTL of cached results.
	TTL time.Duration
	// MaxEntries bounds the cache.
	MaxEntries int
	// FetchTimeout bounds one shared fetch. A fetch outlives a caller whose
	// own deadline is shorter (the webhook's), so the next call finds it
	// cached.
	FetchTimeout time.Duration
	Logger       *slog.Logger
}

// Request asks for the policies of one principal.
type Request struct {
	// PrincipalARN is the IAM user or role ARN (awsclients.Principal.ARN).
	PrincipalARN string
	// CredentialKey identifies the Upstream's credentials including the
	// secret's version (awsclients.Key.String()): a changed secret is a new
	// cache entry.
	CredentialKey string
	// Upstream is an IAM client with the Upstream's own credentials; nil
	// when there is none (then the auditor reads).
	Upstream IAMAPI
	// CredentialSource describes the Upstream's credentials for notes
	// ("secret ns/name").
	CredentialSource string
}

// Collector collects policies with a TTL cache; concurrent requests for the
// same principal and credentials share one fetch.
type Collector struct {
	opts  Options
	log   *slog.Logger
	cache *expirable.LRU[string, *Policies]
	sf    singleflight.Group
	// joined, when set (tests), is called once a Collect call has joined the fetch for its key.
	joined func()
}

// New returns a Collector.
func New(opts Options) (*Collector, error) {
	switch opts.ReadWith {
	case "":
		opts.ReadWith = ReadWithUpstream
	case ReadWithUpstream, ReadWithAuditor:
	default:
		return nil, fmt.Errorf("policy collection: ReadWith %q is neither %q nor %q", opts.ReadWith, ReadWithUpstream, ReadWithAuditor)
	}
	if opts.ReadWith == ReadWithAuditor && opts.Auditor == nil {
		return nil, errors.New("policy collection: ReadWith auditor needs an auditor identity")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{
		opts:  opts,
		log:   opts.Logger,
		cache: expirable.NewLRU[string, *Policies](opts.MaxEntries, nil, opts.TTL),
	}, nil
}

func cacheKey(r Request) string { return r.CredentialKey + "\x00" + r.PrincipalARN }

// Collect returns the policies of r.PrincipalARN, from the cache when fresh.
// It returns when ctx ends even if the shared fetch goes on.
func (c *Collector) Collect(ctx context.Context, r Request) (*Policies, error) {
	if _, err := parsePrincipal(r.PrincipalARN); err != nil {
		return nil, err
	}
	k := cacheKey(r)
	if p, ok := c.cache.Get(k); ok {
		return p.clone(), nil
	}
	ch := c.sf.DoChan(k, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
		defer cancel()
		p, err := c.fetch(fctx, r)
		if err != nil {
			return nil, err
		}
		c.cache.Add(k, p)
		return p, nil
	})
	if c.joined != nil {
		c.joined()
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("collect the policies of %s: %w", r.PrincipalARN, ctx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Policies).clone(), nil
	}
}

// Forget drops the cached results of one set of credentials (e.g. a deleted
// secret); a changed secret needs no call, its key differs.
func (c *Collector) Forget(credentialKey string) {
	prefix := credentialKey + "\x00"
	for _, k := range c.cache.Keys() {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			c.cache.Remove(k)
		}
	}
}

func (c *Collector) fetch(ctx context.Context, r Request) (*Policies, error) {
	if c.opts.ReadWith == ReadWithUpstream && r.Upstream != nil {
		src := r.CredentialSource
		if src == "" {
			src = "the Upstream's credentials"
		}
		p, err := NewPerPrincipal(r.Upstream, src).Fetch(ctx, r.PrincipalARN)
		if err == nil {
			p.ReadWith = ReadWithUpstream
			return p, nil
		}
		var denied *AccessDeniedError
		if !errors.As(err, &denied) || c.opts.Auditor == nil {
			return nil, err
		}
		c.log.Info("Upstream credentials may not read IAM; collecting with the auditor identity",
			"principal", r.PrincipalARN, "credentials", src, "deniedCall", denied.API)
		p, aerr := c.auditor(ctx, r)
		if aerr != nil {
			return nil, fmt.Errorf("%v; the auditor identity failed too: %w", err, aerr)
		}
		p.Notes = append([]string{fmt.Sprintf("%s; collected with the auditor identity instead", denied.Error())}, p.Notes...)
		return p, nil
	}
	if c.opts.Auditor == nil {
		return nil, fmt.Errorf("collect the policies of %s: no IAM reader (no Upstream credentials and no auditor identity)", r.PrincipalARN)
	}
	return c.auditor(ctx, r)
}

func (c *Collector) auditor(ctx context.Context, r Request) (*Policies, error) {
	p, err := c.opts.Auditor.Fetch(ctx, r.PrincipalARN)
	if err != nil {
		return nil, err
	}
	p.ReadWith = ReadWithAuditor
	return p, nil
}
