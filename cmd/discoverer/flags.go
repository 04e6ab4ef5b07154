package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ec2guard/ec2guard/internal/commonflags"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/internal/metricsserving"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// config is everything the flags set.
type config struct {
	kube kubeconfig.Options

	interval               time.Duration
	jitter                 float64
	groupTimeout           time.Duration
	maxBackoff             time.Duration
	maxConcurrentRefreshes int

	publish             string
	serviceType         string
	portTag             string
	zoneHints           bool
	annotationHeartbeat time.Duration

	awsEndpoint string

	discoverFromTags         bool
	discoverSecret           string
	discoverRegions          string
	discoverNamespace        string
	discoverTargetNamespaces string
	discoverMaxUpstreams     int

	podIdentityNamespaces string

	iamAudit     bool
	reports      bool
	iamReadWith  string
	iamPolicyTTL time.Duration

	metricsAddr             string
	metricsSecure           bool
	probeAddr               string
	pprofAddr               string
	leaderElect             bool
	sharding                shardingConfig
	leaderElectionNamespace string
	leaderElectionID        string
	shutdownTimeout         time.Duration

	log commonflags.Logging
}

// parseFlags reads and checks the command line. It returns flag.ErrHelp for -h.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := config{kube: kubeconfig.DefaultOptions(), log: commonflags.DefaultLogging()}
	fs := flag.NewFlagSet("discoverer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.kube.AddFlags(fs)

	fs.DurationVar(&c.interval, "interval", discovery.DefaultInterval, "refresh interval of every credential group")
	fs.Float64Var(&c.jitter, "jitter", discovery.DefaultJitter, "spread of the refresh interval, as a fraction (0 <= j < 1)")
	fs.DurationVar(&c.groupTimeout, "group-timeout", discovery.DefaultTimeout, "deadline of one credential group's listing (and, separately, of its publication)")
	fs.DurationVar(&c.maxBackoff, "max-backoff", 0, "longest wait between attempts of a failing credential group (0: "+discovery.DefaultMaxBackoff.String()+", or --interval when longer)")
	fs.IntVar(&c.maxConcurrentRefreshes, "max-concurrent-refreshes", discovery.DefaultMaxConcurrentRefreshes, "credential groups refreshed at once")

	fs.StringVar(&c.publish, "publish", discovery.PublishEndpointSlices, "publishing mode: endpointslices (a Service and EndpointSlices per EC2 Upstream) or none")
	fs.StringVar(&c.serviceType, "service-type", discovery.ServiceHeadless, "Service published per EC2 Upstream: headless (clusterIP: None, no service IP) or clusterip")
	fs.StringVar(&c.portTag, "port-tag", "", "default instance tag whose value is the instance's port (the ec2guard.io/port-tag annotation overrides it)")
	fs.BoolVar(&c.zoneHints, "zone-hints", true, "add hints.forZones (the instance's availability zone) to every endpoint")
	fs.DurationVar(&c.annotationHeartbeat, "annotation-heartbeat", 0, "renew lastRefresh of an unchanged ec2guard.io/discovered annotation this often (0: write it only when its content changes)")

	commonflags.AddAWSEndpoint(fs, &c.awsEndpoint)

	fs.BoolVar(&c.discoverFromTags, "discover-from-tags", false, "generate EC2 Upstreams for instances tagged "+discovery.TagUpstream+"=<name>")
	fs.StringVar(&c.discoverSecret, "discover-secret", "", "namespace/name of the Gloo AWS secret used by --discover-from-tags")
	fs.StringVar(&c.discoverRegions, "discover-regions", "", "comma-separated regions searched by --discover-from-tags")
	fs.StringVar(&c.discoverNamespace, "discover-namespace", "", "namespace of generated Upstreams whose instances carry no "+discovery.TagNamespace+" tag (default: the secret's)")
	fs.StringVar(&c.discoverTargetNamespaces, "discover-target-namespaces", "", "comma-separated namespaces besides --discover-namespace that an instance's "+discovery.TagNamespace+" tag may choose (* for any; default: none); the secret must also allow them ("+ec2.AnnotationSecretAllowedNamespaces+")")
	fs.IntVar(&c.discoverMaxUpstreams, "discover-max-upstreams", discovery.DefaultMaxGeneratedUpstreams, "most Upstreams --discover-from-tags generates per region")

	fs.StringVar(&c.podIdentityNamespaces, "pod-identity-namespaces", "", "comma-separated namespaces (* for all) whose Upstreams without a secretRef may be discovered with the discoverer's own AWS identity (default: none)")

	fs.BoolVar(&c.iamAudit, "iam-audit", true, "re-evaluate each credential group's IAM policies with the IAM engine on every refresh")
	fs.BoolVar(&c.reports, "reports", true, "write an OpenReports Report (openreports.io/v1alpha1) per EC2 Upstream; skipped when the CRD is not installed")
	commonflags.AddIAMReadWith(fs, &c.iamReadWith)
	fs.DurationVar(&c.iamPolicyTTL, "iam-policy-ttl", 5*time.Minute, "how long collected IAM policies are reused")

	fs.StringVar(&c.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	metricsserving.AddSecureFlag(fs, &c.metricsSecure)
	fs.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.StringVar(&c.pprofAddr, "pprof-bind-address", "", "address serving Go's profiler (net/http/pprof, /debug/pprof/) for diagnosing CPU and memory use; unauthenticated, so bind it to localhost (default: off)")
	fs.BoolVar(&c.leaderElect, "leader-elect", true, "elect a leader: only the leader discovers and writes (off with --sharding=leases)")
	c.sharding.addFlags(fs)
	fs.StringVar(&c.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's)")
	fs.StringVar(&c.leaderElectionID, "leader-election-id", "ec2guard-discoverer", "name of the leader election lease")
	commonflags.AddShutdownTimeout(fs, &c.shutdownTimeout)

	c.log.AddFlags(fs)

	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	err := c.check() // may fill in defaults (the shard identity)
	return c, err
}

// check reports every bad flag at once.
func (c *config) check() error {
	var errs []error
	if err := c.sharding.check(); err != nil {
		errs = append(errs, err)
	}
	if err := c.kube.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: must be positive", c.interval))
	}
	if c.jitter < 0 || c.jitter >= 1 {
		errs = append(errs, fmt.Errorf("--jitter %g: must be at least 0 and less than 1", c.jitter))
	}
	if c.groupTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--group-timeout %s: must be positive", c.groupTimeout))
	}
	if c.maxBackoff != 0 && c.maxBackoff < c.interval {
		errs = append(errs, fmt.Errorf("--max-backoff %s: must be at least --interval %s", c.maxBackoff, c.interval))
	}
	if c.maxConcurrentRefreshes < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-refreshes %d: must be at least 1", c.maxConcurrentRefreshes))
	}
	if c.publish != discovery.PublishEndpointSlices && c.publish != discovery.PublishNone {
		errs = append(errs, fmt.Errorf("--publish %q: must be %s or %s", c.publish, discovery.PublishEndpointSlices, discovery.PublishNone))
	}
	if c.serviceType != discovery.ServiceHeadless && c.serviceType != discovery.ServiceClusterIP {
		errs = append(errs, fmt.Errorf("--service-type %q: must be %s or %s", c.serviceType, discovery.ServiceHeadless, discovery.ServiceClusterIP))
	}
	if _, err := ec2.ParseNamespaceList(c.podIdentityNamespaces); err != nil {
		errs = append(errs, fmt.Errorf("--pod-identity-namespaces: %w", err))
	}
	if c.annotationHeartbeat < 0 {
		errs = append(errs, fmt.Errorf("--annotation-heartbeat %s: must not be negative", c.annotationHeartbeat))
	}
	if c.portTag != "" && (strings.TrimSpace(c.portTag) != c.portTag || len(c.portTag) > 128) {
		errs = append(errs, fmt.Errorf("--port-tag %q: must be a tag key (at most 128 characters, no outer white space)", c.portTag))
	}
	if err := commonflags.ValidateIAMReadWith(c.iamReadWith); err != nil {
		errs = append(errs, err)
	}
	if c.iamPolicyTTL <= 0 {
		errs = append(errs, fmt.Errorf("--iam-policy-ttl %s: must be positive", c.iamPolicyTTL))
	}
	if err := c.log.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.discoverFromTags {
		if _, err := c.tagSource(); err != nil {
			errs = append(errs, err)
		}
	} else if c.discoverSecret != "" || c.discoverRegions != "" || c.discoverNamespace != "" || c.discoverTargetNamespaces != "" {
		errs = append(errs, errors.New("--discover-secret, --discover-regions, --discover-namespace and --discover-target-namespaces need --discover-from-tags"))
	}
	return errors.Join(errs...)
}

// tagSource is the discover-from-tags configuration.
func (c config) tagSource() (discovery.TagSource, error) {
	ns, name, ok := strings.Cut(c.discoverSecret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return discovery.TagSource{}, fmt.Errorf("--discover-secret %q: must be namespace/name of a Gloo AWS secret (required by --discover-from-tags)", c.discoverSecret)
	}
	var regions []string
	for r := range strings.SplitSeq(c.discoverRegions, ",") {
		if r = strings.TrimSpace(r); r != "" {
			regions = append(regions, r)
		}
	}
	if len(regions) == 0 {
		return discovery.TagSource{}, errors.New("--discover-regions: at least one region is required by --discover-from-tags")
	}
	targets, err := ec2.ParseNamespaceList(c.discoverTargetNamespaces)
	if err != nil {
		return discovery.TagSource{}, fmt.Errorf("--discover-target-namespaces: %w", err)
	}
	if c.discoverMaxUpstreams < 1 {
		return discovery.TagSource{}, fmt.Errorf("--discover-max-upstreams %d: must be at least 1", c.discoverMaxUpstreams)
	}
	return discovery.TagSource{
		Secret:           types.NamespacedName{Namespace: ns, Name: name},
		Regions:          regions,
		DefaultNamespace: c.discoverNamespace,
		Namespaces:       targets,
		MaxUpstreams:     c.discoverMaxUpstreams,
	}, nil
}

// options are the discoverer's options from the flags.
func (c config) options() (discovery.Options, error) {
	o := discovery.Options{
		Loop: discovery.LoopOptions{
			Interval: c.interval, Jitter: c.jitter, Timeout: c.groupTimeout, MaxBackoff: c.maxBackoff,
		},
		MaxConcurrentRefreshes: c.maxConcurrentRefreshes,
		Publish:                c.publish,
		ServiceType:            c.serviceType,
		DefaultPortTag:         c.portTag,
		ZoneHints:              c.zoneHints,
		AnnotationHeartbeat:    c.annotationHeartbeat,
	}
	pod, err := ec2.ParseNamespaceList(c.podIdentityNamespaces)
	if err != nil {
		return o, fmt.Errorf("--pod-identity-namespaces: %w", err)
	}
	o.PodIdentityNamespaces = pod
	if c.discoverFromTags {
		src, err := c.tagSource()
		if err != nil {
			return o, err
		}
		o.TagSources = []discovery.TagSource{src}
	}
	return o, nil
}
