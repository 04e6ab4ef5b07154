// Command discoverer is ec2guard's discovery sidecar: it lists the running instances of every
// EC2 Upstream's credential group on an interval, publishes them as a selector-less Service and
// EndpointSlices per Upstream, re-audits IAM and annotates each Upstream with what it found.
// See docs/discoverer.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ec2guard/ec2guard/internal/commonflags"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/internal/metricsserving"
	"github.com/ec2guard/ec2guard/internal/version"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
	"github.com/ec2guard/ec2guard/pkg/report"
)

// auditorRegion is where the pod's own identity reads IAM (a global service).
const auditorRegion = "us-east-1"

func main() {
	if version.Requested(os.Args[1:]) {
		fmt.Println(version.Get())
		return
	}
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "discoverer:", err)
		// The webhook's exit codes: 2 for a usage error, 1 for a failure while running.
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a bad command line (exit code 2, as the webhook's).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func run(args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	log := newLogger(cfg, stderr)
	log.Info("ec2guard discoverer", "build", version.Get())
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))
	ctx := ctrl.SetupSignalHandler()

	restCfg, err := kubeconfig.Load(cfg.kube)
	if err != nil {
		return err
	}
	mgr, err := newManager(restCfg, cfg)
	if err != nil {
		return err
	}
	d, err := newDiscoverer(ctx, cfg, mgr, restCfg, log)
	if err != nil {
		return err
	}
	if err := d.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("caches", d.ReadyCheck); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	log.Info("starting discoverer manager", "leaderElection", cfg.leaderElect, "metrics", cfg.metricsAddr, "probes", cfg.probeAddr)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	level, _ := cfg.log.SlogLevel() // checked by parseFlags
	opts := &slog.HandlerOptions{Level: level}
	if cfg.log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func newManager(restCfg *rest.Config, cfg config) (ctrl.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("scheme: %w", err)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         discovery.CacheOptions(),
		Metrics:                       metricsserving.Options(cfg.metricsAddr, cfg.metricsSecure),
		HealthProbeBindAddress:        cfg.probeAddr,
		PprofBindAddress:              cfg.pprofAddr,
		LeaderElection:                cfg.leaderElect && cfg.sharding.mode == shardingNone,
		LeaderElectionID:              cfg.leaderElectionID,
		LeaderElectionNamespace:       cfg.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       &cfg.shutdownTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	return mgr, nil
}

// newDiscoverer wires the discoverer: AWS clients (adaptive retries, endpoint override), the IAM
// engine and policy collector, metrics in controller-runtime's registry, the manager's cache and
// client.
func newDiscoverer(ctx context.Context, cfg config, mgr ctrl.Manager, restCfg *rest.Config, log *slog.Logger) (*discovery.Discoverer, error) {
	opts, err := cfg.options()
	if err != nil {
		return nil, err
	}
	// With sharding, the member tells the discoverer to regroup when its groups may have changed;
	// d is set before the manager starts the member.
	var d *discovery.Discoverer
	leases, err := client.New(restCfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for the shard leases: %w", err)
	}
	member, err := cfg.sharding.member(leases, func() { d.Regroup() }, logr.FromSlogHandler(log.Handler()).WithName("sharding"))
	if err != nil {
		return nil, err
	}
	if member != nil {
		opts.Shard = member
		if err := mgr.Add(member); err != nil {
			return nil, fmt.Errorf("add the shard member: %w", err)
		}
	}
	factory, err := awsclients.NewFactory(awsclients.Options{
		Endpoint: cfg.awsEndpoint,
		Retry:    ec2api.RetryOptions{Adaptive: true},
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	metrics, err := discovery.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		return nil, err
	}
	var auditor *discovery.Auditor
	if cfg.iamAudit {
		if auditor, err = newAuditor(ctx, cfg, factory, log); err != nil {
			return nil, err
		}
	}
	dlog := logr.FromSlogHandler(log.Handler()).WithName("discoverer")
	deps := discovery.Deps{
		Reader:    mgr.GetCache(),
		APIReader: mgr.GetAPIReader(),
		Writer:    mgr.GetClient(),
		Informers: mgr.GetCache(),
		AWS:       factory,
		Auditor:   auditor,
		Metrics:   metrics,
		Log:       dlog,
	}
	if cfg.reports {
		rw := report.NewWriter(mgr.GetAPIReader(), mgr.GetClient(), mgr.GetRESTMapper(), metrics, nil, dlog.WithName("reports"))
		rw.SetRecheck(cfg.interval)
		deps.Reports = rw
	}
	d, err = discovery.New(deps, opts)
	return d, err
}

func newAuditor(ctx context.Context, cfg config, factory *awsclients.Factory, log *slog.Logger) (*discovery.Auditor, error) {
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		return nil, fmt.Errorf("IAM engine: %w", err)
	}
	co := collect.Options{TTL: cfg.iamPolicyTTL, Logger: log, ReadWith: collect.ReadWithUpstream}
	if cfg.iamReadWith != commonflags.ReadWithUpstream {
		own, err := factory.Get(ctx, awsclients.Request{Region: auditorRegion})
		if err != nil {
			return nil, fmt.Errorf("the pod's own AWS identity for reading IAM: %w", err)
		}
		co.Auditor = collect.NewPerPrincipal(own.IAM, "the discoverer's own AWS identity")
		if cfg.iamReadWith == commonflags.ReadWithAuditor {
			co.ReadWith = collect.ReadWithAuditor
		}
	}
	collector, err := collect.New(co)
	if err != nil {
		return nil, fmt.Errorf("IAM policy collector: %w", err)
	}
	return discovery.NewAuditor(engine, collector), nil
}
