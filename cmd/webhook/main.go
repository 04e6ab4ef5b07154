// Command webhook is ec2guard's admission webhook for Gloo EC2 Upstreams: it validates them (spec,
// secret, cross-namespace secret access, IAM for ec2:DescribeInstances, consistency) and annotates
// them with what it found. docs/webhook.md describes flags, metrics and messages.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/internal/metricsserving"
	"github.com/ec2guard/ec2guard/internal/version"
	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/certrotation"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// auditorRegion is the region of the auditor's clients (IAM is global; STS is regional).
const auditorRegion = "us-east-1"

func main() {
	if version.Requested(os.Args[1:]) {
		fmt.Println(version.Get())
		return
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run parses the flags, runs the webhook until SIGTERM/SIGINT and returns the exit code.
func run(args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "webhook: %v\n", err)
		return 2
	}
	slogger := newSlogger(cfg, stderr)
	log := logr.FromSlogHandler(slogger.Handler())
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	log.Info("ec2guard webhook", "build", version.Get())
	if err := serve(ctrl.SetupSignalHandler(), cfg, log, slogger); err != nil {
		log.Error(err, "webhook stopped")
		return 1
	}
	log.Info("webhook stopped")
	return 0
}

func newSlogger(cfg *config, w io.Writer) *slog.Logger {
	level, _ := cfg.log.SlogLevel() // checked by parseFlags
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: debugLevelName}
	if cfg.log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// debugLevelName prints every level below INFO as DEBUG: logr's V(n) arrives as slog level -n,
// which slog would print as DEBUG+3 and the like.
func debugLevelName(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l < slog.LevelInfo {
			a.Value = slog.StringValue("DEBUG")
		}
	}
	return a
}

// serve builds the manager and the handlers and runs them until ctx ends.
func serve(ctx context.Context, cfg *config, log logr.Logger, slogger *slog.Logger) error {
	restCfg, err := kubeconfig.Load(cfg.kube)
	if err != nil {
		return err
	}
	metrics, err := admission.NewMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	// rest_client_rate_limiter_duration_seconds shows client-side throttling of the API client
	// (--kube-api-qps, --kube-api-burst), which every SubjectAccessReview goes through.
	crmetrics.RegisterRESTClientMetrics(crmetrics.MetricRateLimiterLatency)
	var lazyCert *certrotation.LazyCertificate
	if cfg.certRotation.enabled {
		lazyCert = certrotation.NewLazyCertificate(cfg.certDir, cfg.certName, cfg.keyName, log.WithName("certificate"))
	}
	mgr, err := newManager(restCfg, cfg, log, lazyCert, admission.CountTLSHandshakes(metrics))
	if err != nil {
		return err
	}
	if err := addCertRotation(mgr, cfg, lazyCert); err != nil {
		return err
	}
	iam, err := newIAMEvaluator(ctx, cfg, mgr, metrics, log, slogger)
	if err != nil {
		return err
	}
	access, err := admission.NewCachedAccessReviewer(&admission.SubjectAccessReviewer{Client: mgr.GetClient()}, cfg.accessCacheOptions(), metrics)
	if err != nil {
		return err
	}
	reviewer := &admission.Reviewer{
		Secrets: &admission.CachedSecrets{Reader: mgr.GetClient(), Namespaces: cfg.secretNamespaces},
		Access:  access,
		IAM:     iam,

		PodIdentityNamespaces: cfg.podIdentityNamespaces,
	}
	handlers := admission.NewHandlers(
		&admission.Validator{Reviewer: reviewer, Enforcement: cfg.enforcement, Metrics: metrics, Log: log.WithName("validate")},
		&admission.Mutator{Reviewer: reviewer, Log: log.WithName("mutate")},
		metrics)
	if err := admission.Register(ctx, mgr, handlers); err != nil {
		return err
	}
	// The serving certificate's expiry: metric, and a warning in the log within 30 days of it.
	expiry, err := certrotation.NewExpiryMetric(crmetrics.Registry)
	if err != nil {
		return err
	}
	if err := mgr.Add(&certrotation.ExpiryWatcher{CertFile: filepath.Join(cfg.certDir, cfg.certName), Interval: time.Minute, Metric: expiry, Log: log.WithName("certificate")}); err != nil {
		return fmt.Errorf("add the certificate expiry watcher: %w", err)
	}
	log.Info("starting webhook", "port", cfg.webhookPort, "certDir", cfg.certDir,
		"enforcement", cfg.enforcement.String(), "iamDeadline", cfg.iamDeadline.String(), "iamSources", cfg.iamSources,
		"secretNamespaces", cfg.secretNamespaces, "podIdentityNamespaces", cfg.podIdentityNamespaces, "awsEndpointOverride", cfg.awsEndpoint != "")
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run the manager: %w", err)
	}
	return nil
}

// newManager builds the controller-runtime manager: the webhook server, the metrics and probe
// endpoints, and a cache that holds only the Secrets ec2guard may read, stripped to the AWS keys.
func newManager(restCfg *rest.Config, cfg *config, log logr.Logger, lazyCert *certrotation.LazyCertificate, countHandshakes func(*tls.Config)) (manager.Manager, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("build the scheme: %w", err)
	}
	secrets := cache.ByObject{Transform: admission.StripSecret}
	if len(cfg.secretNamespaces) > 0 {
		secrets.Namespaces = map[string]cache.Config{}
		for _, ns := range cfg.secretNamespaces {
			secrets.Namespaces[ns] = cache.Config{}
		}
	}
	if cfg.secretLabelSelector != "" {
		sel, err := labels.Parse(cfg.secretLabelSelector)
		if err != nil {
			return nil, fmt.Errorf("--secret-label-selector %q: %w", cfg.secretLabelSelector, err)
		}
		secrets.Label = sel
	}
	tlsOpts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }, countHandshakes}
	if !cfg.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if lazyCert != nil {
		// Self-managed certificates: serve the mounted Secret once it exists.
		tlsOpts = append(tlsOpts, lazyCert.TLSOption)
	}
	shutdown := cfg.shutdownTimeout
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		// Only the self-managed certificate rotator needs a leader; the webhook serves on every replica.
		LeaderElection:                cfg.certRotation.enabled,
		LeaderElectionID:              cfg.certRotation.leaderElectionID,
		LeaderElectionNamespace:       cfg.certRotation.leaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Scheme:                        scheme,
		Logger:                        log,
		Metrics:                       metricsserving.Options(cfg.metricsAddr, cfg.metricsSecure),
		HealthProbeBindAddress:        cfg.healthAddr,
		GracefulShutdownTimeout:       &shutdown,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: cfg.webhookHost, Port: cfg.webhookPort,
			CertDir: cfg.certDir, CertName: cfg.certName, KeyName: cfg.keyName,
			TLSOpts: tlsOpts,
		}),
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: secrets}},
	})
	if err != nil {
		return nil, fmt.Errorf("create the manager: %w", err)
	}
	return mgr, nil
}

// newIAMEvaluator wires the AWS access layer, the policy collector and the IAM engine.
func newIAMEvaluator(ctx context.Context, cfg *config, mgr manager.Manager, m *admission.Metrics, log logr.Logger, slogger *slog.Logger) (*admission.IAMEvaluator, error) {
	httpClient := admission.NewCountingHTTPClient(awshttp.NewBuildableClient().WithTimeout(awsclients.DefaultHTTPTimeout), m)
	factory, err := awsclients.NewFactory(awsclients.Options{
		Endpoint:   cfg.awsEndpoint,
		HTTPClient: httpClient,
		// Few, short retries: the webhook has --iam-deadline, not the discoverer's patience.
		Retry:  ec2api.RetryOptions{MaxAttempts: 2, MaxBackoff: 200 * time.Millisecond},
		Logger: slogger.With("component", "awsclients"),
	})
	if err != nil {
		return nil, err
	}
	copts := collect.Options{ReadWith: cfg.iamReader, Logger: slogger.With("component", "collect")}
	aws := &admission.FactoryAWS{Factory: factory}
	if cfg.iamAuditor {
		auditor, err := factory.Get(ctx, awsclients.Request{Region: auditorRegion})
		if err != nil {
			return nil, fmt.Errorf("the auditor identity (--iam-read-with=%s): %w", iamReadWithFlag{cfg}.String(), err)
		}
		aws.Simulator = auditor.IAM
		if cfg.iamCollection == collect.StrategyAccountSnapshot {
			snap := collect.NewSnapshot(auditor.IAM, collect.SnapshotOptions{Reader: "the auditor identity", Logger: slogger.With("component", "snapshot")})
			if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error { snap.Run(ctx); return nil })); err != nil {
				return nil, fmt.Errorf("add the IAM snapshot refresher: %w", err)
			}
			copts.Auditor = snap
		} else {
			copts.Auditor = collect.NewPerPrincipal(auditor.IAM, "the auditor identity")
		}
	}
	collector, err := collect.New(copts)
	if err != nil {
		return nil, err
	}
	aws.Collector = collector
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		return nil, err
	}
	return admission.NewIAMEvaluator(aws, engine, admission.IAMOptions{
		Sources: cfg.iamSources, Deadline: cfg.iamDeadline, TTL: cfg.iamCacheTTL, UnknownTTL: cfg.iamUnknownTTL,
	}, m, log.WithName("iam"))
}

// addCertRotation sets up the self-managed certificate mode (--cert-rotation): the rotator
// (leader only), the lazy loading of the mounted certificate and its readiness check.
func addCertRotation(mgr manager.Manager, cfg *config, lazyCert *certrotation.LazyCertificate) error {
	if lazyCert == nil {
		return nil
	}
	opts, err := cfg.certRotation.options(cfg.certDir, cfg.certName, cfg.keyName)
	if err != nil {
		return err
	}
	if err := certrotation.AddRotator(mgr, opts); err != nil {
		return err
	}
	if err := mgr.Add(lazyCert); err != nil {
		return fmt.Errorf("add the serving certificate loader: %w", err)
	}
	if err := mgr.AddReadyzCheck("serving-certificate", lazyCert.Checker); err != nil {
		return fmt.Errorf("add readiness check serving-certificate: %w", err)
	}
	return nil
}
