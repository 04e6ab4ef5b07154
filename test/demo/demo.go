// Package demo walks ec2guard's tutorial against the real product: a local kube-apiserver and
// etcd (envtest, through test/harness/k8senv), moto as AWS (test/harness/awsemu), the chart's RBAC
// and webhook configurations (rendered with `helm template`), and the real webhook and discoverer
// binaries as processes serving real TLS. Every step is a real `kubectl` (or `ec2guard report`)
// command whose output is printed; Run returns what each step produced so that a test can check
// it. `make demo` runs it through hack/demo (see docs/demo.md); test/demo asserts it.
package demo

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/report"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// The tutorial's names.
const (
	Region            = "us-east-1"
	UpstreamNamespace = "gloo-system"
	UpstreamName      = "ec2-demo-upstream"
	SecretNamespace   = "default"
	SecretName        = "gloo-tag-group1"
	ReleaseNamespace  = "ec2guard-system"
	ReleaseName       = "ec2guard"
	// TeamNamespace holds the Upstream that borrows the secret; BorrowingUser may edit Upstreams
	// there but may not read the secret.
	TeamNamespace = "team-a"
	BorrowingUser = "alice"
	// RetagTo is the version tag given to one matching instance, so that it stops matching.
	RetagTo = "v1.2.4"

	// DefaultInterval is the discoverer's refresh interval in the demo.
	DefaultInterval = 5 * time.Second
	// HelmEnv names the helm binary (hack/helm.sh exports it).
	HelmEnv = "EC2GUARD_HELM"

	upstreamFile = "examples/seed-upstream-demo.yaml"
	brokenFile   = "examples/broken/" + string(codes.FilterKeyOrKVPair) + "-key-and-kvpair.yaml"
	seedPolicy   = "examples/seed-policy.json"
	fixedPolicy  = "examples/fixed-policy.json"
	chartDir     = "charts/ec2guard"
	stepTimeout  = time.Minute
	// readyTimeout bounds the wait for a binary's /readyz; stopGrace is how long it has to exit
	// after SIGTERM before it is killed.
	readyTimeout = time.Minute
	stopGrace    = 15 * time.Second
)

// TutorialFilters are the tag filters of examples/seed-upstream-demo.yaml: the key gloo-id with
// any value, gloo-tag=group1 and version=v1.2.3.
var TutorialFilters = map[string]string{"gloo-id": "", "gloo-tag": "group1", "version": "v1.2.3"}

// seedInstance is one group of instances the demo launches.
type seedInstance struct {
	n    int
	tags map[string]string
	stop bool // stopped after launch
}

// seedInstances: three running instances the tutorial Upstream selects, one it selects but
// stopped, and three that miss one filter each.
var seedInstances = []seedInstance{
	{n: 3, tags: map[string]string{"Name": "echo", "gloo-id": "echo", "gloo-tag": "group1", "version": "v1.2.3"}},
	{n: 1, tags: map[string]string{"Name": "echo-stopped", "gloo-id": "echo", "gloo-tag": "group1", "version": "v1.2.3"}, stop: true},
	{n: 1, tags: map[string]string{"Name": "other-group", "gloo-id": "echo", "gloo-tag": "group2", "version": "v1.2.3"}},
	{n: 1, tags: map[string]string{"Name": "old-version", "gloo-id": "echo", "gloo-tag": "group1", "version": "v1.2.2"}},
	{n: 1, tags: map[string]string{"Name": "no-gloo-id", "gloo-tag": "group1", "version": "v1.2.3"}},
}

// Options configures Run.
type Options struct {
	// Root is the repository root (examples/, charts/ are read from it).
	Root string
	// BinDir holds the webhook, discoverer and ec2guard binaries. Default: Root/bin.
	BinDir string
	// LogDir receives the processes' logs, the manifests the demo applies and the admin
	// kubeconfig. It must exist.
	LogDir string
	// Out receives the walk: each command and its real output.
	Out io.Writer
	// Interval is the discoverer's refresh interval. Default: DefaultInterval.
	Interval time.Duration
}

// Step is one printed command and what it produced.
type Step struct {
	Title   string
	Command string
	Stdout  string
	Stderr  string
	// Err is non-nil when the command failed (e.g. kubectl exit 1 on a rejection).
	Err error
}

// Result is what the walk observed, for a test to check.
type Result struct {
	// SeedUser and FixedUser are the IAM users whose keys the secret holds before and after the fix.
	SeedUser, FixedUser awsemu.User
	// Instances are the seeded instances as DescribeInstances reported them before the retag.
	Instances []awsemu.Instance

	SeedRejected  Step
	FixedCreated  Step
	Annotations   map[string]string // ec2guard.io/ annotations the webhook set on the created Upstream
	Slices        Step
	SliceIPs      []string // endpoint addresses published for the Upstream, sorted
	Retagged      string   // id of the instance whose version tag was changed to RetagTo
	SlicesRetag   Step
	SliceIPsRetag []string // endpoint addresses after the retag, sorted
	RetagDelay    time.Duration
	Report        Step
	Broken        Step
	CrossNS       Step

	// Processes are the ids of every process the demo started (the control plane, moto, the
	// webhook, the discoverer), and Ports the loopback ports they listened on, read just before
	// the demo stopped them.
	Processes []int
	Commands  map[int]string // command line by process id
	Ports     []int
}

// Matches reports whether an instance with these tags is selected by TutorialFilters.
func Matches(tags map[string]string) bool {
	for k, v := range TutorialFilters {
		got, ok := tags[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

// walk is the state of one Run.
type walk struct {
	t      testing.TB
	o      Options
	out    io.Writer
	env    *k8senv.Env
	moto   *awsemu.Server
	res    *Result
	step   int
	procs  []*binproc.Process
	ports  []int
	kubecf string // admin kubeconfig in LogDir
}

// Run starts everything, walks the tutorial printing each command and its output to o.Out, and
// returns what it observed. Everything it starts is stopped through t.Cleanup (the harness's own
// cleanups and the binaries'); errors during cleanup are reported with t.Errorf. An error means
// a step did not give the tutorial's outcome or something could not start; ctx ends the walk
// early (Ctrl-C).
func Run(ctx context.Context, t testing.TB, o Options) (*Result, error) {
	t.Helper()
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.Root, "bin")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	w := &walk{t: t, o: o, out: o.Out, res: &Result{}}
	for _, b := range []string{"webhook", "discoverer", "ec2guard"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("binary %s: %w (run `make build`)", b, err)
		}
	}
	helm := k8senv.RequireEnv(t, HelmEnv)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)

	// Whatever happens next, note the processes before the cleanups stop them.
	defer w.recordProcesses()
	if err := w.start(ctx); err != nil {
		return w.res, err
	}
	for _, f := range []func(context.Context) error{
		w.seedAWS,
		func(ctx context.Context) error { return w.install(ctx, helm) },
		w.seedPolicyRejected,
		w.fixedPolicyCreated,
		w.slicesPublished,
		w.retag,
		w.consistencyReport,
		w.brokenFilter,
		w.borrowedSecret,
	} {
		if err := ctx.Err(); err != nil {
			return w.res, fmt.Errorf("demo interrupted: %w", err)
		}
		if err := f(ctx); err != nil {
			return w.res, err
		}
	}
	return w.res, nil
}

// start runs the control plane and moto side by side (each takes a few seconds).
func (w *walk) start(ctx context.Context) error {
	w.header("Start a local control plane (etcd + kube-apiserver) and moto as AWS")
	began := time.Now()
	envCh := make(chan *k8senv.Env, 1)
	motoCh := make(chan *awsemu.Server, 1)
	// The harness stops the test (t.FailNow) on failure; in a goroutine that ends only the
	// goroutine, so a nil result says it failed and the reason is in the test's log.
	go func() {
		var env *k8senv.Env
		defer func() { envCh <- env }()
		env = k8senv.Start(w.t, k8senv.Options{})
	}()
	go func() {
		var m *awsemu.Server
		defer func() { motoCh <- m }()
		m = awsemu.Start(w.t)
	}()
	w.env, w.moto = <-envCh, <-motoCh
	if w.env == nil || w.moto == nil {
		return errors.New("the control plane or moto did not start (see the messages above)")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("demo interrupted: %w", err)
	}
	if err := os.WriteFile(filepath.Join(w.o.LogDir, "kubeconfig"), mustRead(w.env.KubeconfigPath), 0o600); err != nil {
		return fmt.Errorf("copying the admin kubeconfig: %w", err)
	}
	w.kubecf = filepath.Join(w.o.LogDir, "kubeconfig")
	w.note("kube-apiserver %s, moto %s (%.1fs); kubectl below runs with KUBECONFIG=%s",
		w.env.Config.Host, w.moto.Endpoint(), time.Since(began).Seconds(), w.rel(w.kubecf))
	return nil
}

// seedAWS creates the tutorial's IAM users and instances in moto.
func (w *walk) seedAWS(ctx context.Context) error {
	w.header("Seed AWS (moto): two IAM users and tagged EC2 instances in " + Region)
	sd := w.moto.Seeder()
	var err error
	for _, u := range []struct {
		user   *awsemu.User
		name   string
		policy string
	}{{&w.res.SeedUser, "gloo-seed", seedPolicy}, {&w.res.FixedUser, "gloo-fixed", fixedPolicy}} {
		if *u.user, err = sd.CreateUser(ctx, u.name); err != nil {
			return err
		}
		doc, err := os.ReadFile(filepath.Join(w.o.Root, u.policy))
		if err != nil {
			return fmt.Errorf("reading %s: %w", u.policy, err)
		}
		if err := sd.PutUserPolicy(ctx, u.name, strings.TrimSuffix(filepath.Base(u.policy), ".json"), string(doc)); err != nil {
			return err
		}
		w.note("IAM user %-10s inline policy %s", u.name, u.policy)
	}
	var ids []string
	for _, s := range seedInstances {
		insts, err := sd.RunInstances(ctx, Region, s.n, s.tags)
		if err != nil {
			return err
		}
		for _, i := range insts {
			ids = append(ids, i.ID)
			if s.stop {
				if err := sd.StopInstances(ctx, Region, i.ID); err != nil {
					return err
				}
			}
		}
	}
	if w.res.Instances, err = sd.DescribeInstances(ctx, Region, ids...); err != nil {
		return err
	}
	fmt.Fprintf(w.out, "  %-21s %-15s %-8s %-7s %s\n", "INSTANCE", "PRIVATE IP", "STATE", "MATCHES", "TAGS")
	for _, i := range w.res.Instances {
		match := "no"
		if Matches(i.Tags) {
			match = "yes"
		}
		fmt.Fprintf(w.out, "  %-21s %-15s %-8s %-7s %s\n", i.ID, i.PrivateIP, i.State, match, labels.Set(i.Tags).String())
	}
	w.note("the tutorial Upstream's filters: key gloo-id, gloo-tag=group1, version=v1.2.3")
	return nil
}

// install renders the chart, applies its RBAC and webhook configurations (pointed at the local
// webhook with a freshly generated CA), and runs both binaries with the chart's command lines as
// the chart's ServiceAccounts.
func (w *walk) install(ctx context.Context, helm string) error {
	w.header("Install ec2guard: the chart's RBAC and webhook configurations; webhook and discoverer as processes")
	for _, ns := range []string{ReleaseNamespace, UpstreamNamespace, TeamNamespace} {
		if err := w.env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	certDir := filepath.Join(w.o.LogDir, "webhook-certs")
	caFile, err := servingCert(certDir)
	if err != nil {
		return err
	}
	listen, err := binproc.LoopbackAddr()
	if err != nil {
		return err
	}
	// The chart's own values, with: the serving certificate given (tls.secretName + caBundle),
	// Secrets read in the secret's namespace only, the emulator as AWS, a short interval.
	args := []string{"template", ReleaseName, filepath.Join(w.o.Root, chartDir), "--namespace", ReleaseNamespace,
		"--set", "tls.secretName=ec2guard-webhook-tls", "--set-file", "tls.caBundle=" + caFile,
		"--set", "webhook.secretNamespaces={" + SecretNamespace + "}",
		"--set", "webhook.awsEndpoint=" + w.moto.Endpoint(), "--set", "discoverer.awsEndpoint=" + w.moto.Endpoint(),
		"--set", "discoverer.interval=" + w.o.Interval.String()}
	w.command("helm "+strings.Join(relArgs(w.o.Root, args), " ")+" > "+w.rel(filepath.Join(w.o.LogDir, "chart.yaml")), "")
	rendered, err := exec.CommandContext(ctx, helm, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("helm template: %w: %s", err, ee.Stderr)
		}
		return fmt.Errorf("helm template: %w", err)
	}
	if err := os.WriteFile(filepath.Join(w.o.LogDir, "chart.yaml"), rendered, 0o600); err != nil {
		return fmt.Errorf("writing the rendered chart: %w", err)
	}
	ch, err := localInstall(rendered, "https://"+listen)
	if err != nil {
		return err
	}
	applied := filepath.Join(w.o.LogDir, "install.yaml")
	if err := os.WriteFile(applied, ch.manifest, 0o600); err != nil {
		return fmt.Errorf("writing the install manifest: %w", err)
	}
	w.note("applied: the chart's ServiceAccounts, RBAC and both webhook configurations, their clientConfig")
	w.note("pointed at https://%s (the local webhook) instead of the Service; no Deployments (no kubelet here)", listen)
	if _, err := w.kubectl(ctx, "", "apply", "-f", applied); err != nil {
		return err
	}

	host, port, _ := net.SplitHostPort(listen)
	if n, err := strconv.Atoi(port); err == nil {
		w.ports = append(w.ports, n)
	}
	webhookArgs, err := w.processArgs(ctx, ch.webhook, "webhook")
	if err != nil {
		return err
	}
	webhookArgs = append(webhookArgs, "--webhook-host="+host, "--webhook-port="+port, "--cert-dir="+certDir)
	if _, err := w.run(ctx, "webhook", webhookArgs); err != nil {
		return err
	}
	discArgs, err := w.processArgs(ctx, ch.discoverer, "discoverer")
	if err != nil {
		return err
	}
	if _, err := w.run(ctx, "discoverer", discArgs); err != nil {
		return err
	}
	w.note("webhook on https://%s, discoverer every %s, both as the chart's ServiceAccounts; logs in %s",
		listen, w.o.Interval, w.rel(w.o.LogDir))
	return nil
}

// processArgs is the chart's command line for a binary plus a kubeconfig of its ServiceAccount
// and loopback probe and metrics addresses (the chart's listen on every interface).
func (w *walk) processArgs(ctx context.Context, d deployment, name string) ([]string, error) {
	kubeconfig, err := w.serviceAccountKubeconfig(ctx, d.serviceAccount)
	if err != nil {
		return nil, err
	}
	probes, err := binproc.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := binproc.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	args := slices.Clone(d.args)
	return append(args, "--kubeconfig="+kubeconfig, "--health-probe-bind-address="+probes, "--metrics-bind-address="+metrics), nil
}

// run starts bin/NAME with args, waits until /readyz passes and stops it in t.Cleanup.
func (w *walk) run(ctx context.Context, name string, args []string) (*binproc.Process, error) {
	probes := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--health-probe-bind-address="); ok {
			probes = v
		}
	}
	p, err := binproc.Launch(binproc.Config{Name: name, Bin: filepath.Join(w.o.BinDir, name), Args: args,
		LogPath: filepath.Join(w.o.LogDir, name+".log"), StopTimeout: stopGrace})
	if err != nil {
		return nil, err
	}
	w.procs = append(w.procs, p)
	w.t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			w.t.Errorf("demo: %v", err)
		}
	})
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := p.WaitReady(readyCtx, "http://"+probes+"/readyz"); err != nil {
		return nil, err
	}
	return p, nil
}

// serviceAccountKubeconfig writes a kubeconfig authenticating as the ServiceAccount (a token from
// the TokenRequest API), so each binary runs with exactly the chart's RBAC.
func (w *walk) serviceAccountKubeconfig(ctx context.Context, name string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ReleaseNamespace, Name: name}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	if err := w.env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		return "", fmt.Errorf("token for ServiceAccount %s/%s: %w", ReleaseNamespace, name, err)
	}
	server := w.env.Config.Host
	if !strings.Contains(server, "://") {
		server = "https://" + server
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["demo"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: w.env.Config.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: "demo", AuthInfo: name}
	cfg.CurrentContext = name
	path := filepath.Join(w.o.LogDir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing the kubeconfig of %s: %w", name, err)
	}
	return path, nil
}

// seedPolicyRejected: the tutorial Upstream with a secret holding the seed user's keys.
func (w *walk) seedPolicyRejected(ctx context.Context) error {
	w.header("The tutorial Upstream, its secret holding the keys of gloo-seed (policy " + seedPolicy + ")")
	// The API server loads webhook configurations asynchronously and the webhook's Secret cache
	// follows the API a moment later: wait until a server-side dry run gets the IAM verdict.
	if err := w.applySecretUntil(ctx, "secret-gloo-seed.yaml", w.res.SeedUser, "the webhook to judge the Upstream by its IAM policy",
		func(stderr string, _ error) bool { return strings.Contains(stderr, string(codes.IAMImplicitDeny)) }); err != nil {
		return err
	}
	s, _ := w.kubectl(ctx, "", "apply", "-f", upstreamFile)
	w.res.SeedRejected = s
	if s.Err == nil || !strings.Contains(s.Stderr, string(codes.IAMImplicitDeny)) {
		return fmt.Errorf("the tutorial Upstream with the seed policy was not rejected with %s: %v\n%s%s", codes.IAMImplicitDeny, s.Err, s.Stdout, s.Stderr)
	}
	w.note("rejected: the statement is named, with the fix (Resource \"*\", region pinned, tags in the filters)")
	return nil
}

// fixedPolicyCreated: the secret now holds the keys of the user with the fixed policy.
func (w *walk) fixedPolicyCreated(ctx context.Context) error {
	w.header("The fix: the secret holds the keys of gloo-fixed (policy " + fixedPolicy + ")")
	if err := w.applySecretUntil(ctx, "secret-gloo-fixed.yaml", w.res.FixedUser, "the webhook to see the updated secret",
		func(_ string, err error) bool { return err == nil }); err != nil {
		return err
	}
	s, _ := w.kubectl(ctx, "", "apply", "-f", upstreamFile)
	w.res.FixedCreated = s
	if s.Err != nil || !strings.Contains(s.Stdout, "created") {
		return fmt.Errorf("the tutorial Upstream with the fixed policy was not created: %v\n%s%s", s.Err, s.Stdout, s.Stderr)
	}
	y, err := w.kubectl(ctx, "ec2guard.io", "get", "upstream", UpstreamName, "-n", UpstreamNamespace, "-o", "yaml")
	if err != nil {
		return err
	}
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(y.Stdout), &obj.Object); err != nil {
		return fmt.Errorf("reading the Upstream kubectl printed: %w", err)
	}
	w.res.Annotations = map[string]string{}
	for _, k := range []string{admission.AnnotationPrincipal, admission.AnnotationIAMDecision, admission.AnnotationIAMSource, admission.AnnotationConsistency} {
		if v, ok := obj.GetAnnotations()[k]; ok {
			w.res.Annotations[k] = v
		}
	}
	if w.res.Annotations[admission.AnnotationIAMDecision] != "allowed" {
		return fmt.Errorf("the created Upstream's %s is %q, want allowed", admission.AnnotationIAMDecision, w.res.Annotations[admission.AnnotationIAMDecision])
	}
	w.note("created and annotated by the mutating webhook: who the credentials are, the IAM decision, its source")
	return nil
}

// slicesPublished waits for the discoverer's EndpointSlices and prints them.
func (w *walk) slicesPublished(ctx context.Context) error {
	w.header("The discoverer publishes the running matching instances as EndpointSlices")
	want := w.expectedIPs("")
	began := time.Now()
	var got []string
	if err := w.eventually(ctx, "the EndpointSlices of the Upstream", func() (bool, string) {
		var err error
		got, err = w.sliceIPs(ctx)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprintf("published %v, want %v", got, want)
	}); err != nil {
		return err
	}
	w.note("published %.1fs after the Upstream was created (interval %s)", time.Since(began).Seconds(), w.o.Interval)
	s, err := w.kubectl(ctx, "", "get", "service,endpointslices", "-n", UpstreamNamespace, "-o", "wide")
	if err != nil {
		return err
	}
	w.res.Slices, w.res.SliceIPs = s, got
	w.note("exactly the three running instances that match: %s", strings.Join(got, ", "))
	return nil
}

// retag changes the version tag of one matching instance and waits for the slice to follow.
func (w *walk) retag(ctx context.Context) error {
	var target awsemu.Instance
	for _, i := range w.res.Instances {
		if i.State == "running" && Matches(i.Tags) {
			target = i
			break
		}
	}
	if target.ID == "" {
		return errors.New("no running matching instance to retag")
	}
	w.res.Retagged = target.ID
	w.header("An instance is retagged version=" + RetagTo + ": the slice follows within one interval")
	w.command(fmt.Sprintf("aws ec2 create-tags --region %s --resources %s --tags Key=version,Value=%s   # through the AWS SDK, against moto", Region, target.ID, RetagTo), "")
	if err := w.moto.Seeder().CreateTags(ctx, Region, []string{target.ID}, map[string]string{"version": RetagTo}); err != nil {
		return err
	}
	began := time.Now()
	want := w.expectedIPs(target.ID)
	var got []string
	if err := w.eventually(ctx, "the EndpointSlice to drop the retagged instance", func() (bool, string) {
		var err error
		got, err = w.sliceIPs(ctx)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprintf("published %v, want %v", got, want)
	}); err != nil {
		return err
	}
	w.res.RetagDelay = time.Since(began)
	w.res.SliceIPsRetag = got
	w.note("the slice changed %.1fs after the retag (interval %s)", w.res.RetagDelay.Seconds(), w.o.Interval)
	s, err := w.kubectl(ctx, "", "get", "endpointslices", "-n", UpstreamNamespace, "-o", "wide")
	if err != nil {
		return err
	}
	w.res.SlicesRetag = s
	return nil
}

// consistencyReport renders the discoverer's OpenReports Report with the CLI.
func (w *walk) consistencyReport(ctx context.Context) error {
	w.header("ec2guard report renders the consistency reports the discoverer wrote")
	if err := w.eventually(ctx, "the consistency report", func() (bool, string) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "openreports.io", Version: "v1alpha1", Kind: "Report"})
		err := w.env.Client.Get(ctx, client.ObjectKey{Namespace: UpstreamNamespace, Name: report.Name(UpstreamName)}, u)
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	args := []string{"report", "--kubeconfig", w.kubecf, "-n", UpstreamNamespace}
	cmd := exec.CommandContext(ctx, filepath.Join(w.o.BinDir, "ec2guard"), args...)
	cmd.Env = binproc.Env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	s := Step{Title: "report", Command: "bin/ec2guard " + strings.Join(relArgs(w.o.Root, args), " "), Stdout: out.String(), Stderr: errOut.String(), Err: runErr}
	w.print(s)
	w.res.Report = s
	var ee *exec.ExitError
	if runErr != nil && !(errors.As(runErr, &ee) && ee.ExitCode() == 1) {
		return fmt.Errorf("ec2guard report: %w\n%s", runErr, s.Stderr)
	}
	if !strings.Contains(s.Stdout, UpstreamName) {
		return fmt.Errorf("ec2guard report does not show %s:\n%s", UpstreamName, s.Stdout)
	}
	return nil
}

// brokenFilter: a filter with both key and kvPair.
func (w *walk) brokenFilter(ctx context.Context) error {
	w.header("A broken filter (key and kvPair in one filter) is rejected")
	s, _ := w.kubectl(ctx, "", "apply", "-f", brokenFile)
	w.res.Broken = s
	if s.Err == nil || !strings.Contains(s.Stderr, string(codes.FilterKeyOrKVPair)) {
		return fmt.Errorf("the broken filter was not rejected with %s: %v\n%s%s", codes.FilterKeyOrKVPair, s.Err, s.Stdout, s.Stderr)
	}
	return nil
}

// borrowedSecret: a user who may edit Upstreams in team-a but not read the secret borrows it.
func (w *walk) borrowedSecret(ctx context.Context) error {
	w.header("A cross-namespace secret borrowed by a user who may not read it is rejected")
	for _, args := range [][]string{
		{"create", "role", "upstream-editor", "-n", TeamNamespace, "--verb=get,list,watch,create,update,patch,delete", "--resource=upstreams.gloo.solo.io"},
		{"create", "rolebinding", "alice-edits-upstreams", "-n", TeamNamespace, "--role=upstream-editor", "--user=" + BorrowingUser},
	} {
		if _, err := w.kubectl(ctx, "", args...); err != nil {
			return err
		}
	}
	can, _ := w.kubectl(ctx, "", "auth", "can-i", "get", "secret/"+SecretName, "-n", SecretNamespace, "--as="+BorrowingUser)
	if strings.TrimSpace(can.Stdout) != "no" {
		return fmt.Errorf("%s may read the secret (kubectl auth can-i said %q)", BorrowingUser, can.Stdout)
	}
	manifest := filepath.Join(w.o.LogDir, "team-a-upstream.yaml")
	doc := fmt.Sprintf(`# An Upstream in %[1]s that borrows the tutorial's secret from %[2]s.
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: team-a-ec2
  namespace: %[1]s
spec:
  awsEc2:
    region: %[3]s
    secretRef:
      name: %[4]s
      namespace: %[2]s
    filters:
    - kvPair:
        key: gloo-tag
        value: group1
`, TeamNamespace, SecretNamespace, Region, SecretName)
	if err := os.WriteFile(manifest, []byte(doc), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", manifest, err)
	}
	s, _ := w.kubectl(ctx, "", "--as="+BorrowingUser, "apply", "-f", manifest)
	w.res.CrossNS = s
	if s.Err == nil || !strings.Contains(s.Stderr, string(codes.SecretAccessDenied)) {
		return fmt.Errorf("%s borrowed the secret without being rejected with %s: %v\n%s%s", BorrowingUser, codes.SecretAccessDenied, s.Err, s.Stdout, s.Stderr)
	}
	return nil
}

// recordProcesses notes every process the demo started and the loopback ports they listen on.
func (w *walk) recordProcesses() {
	pids, err := binproc.Descendants(os.Getpid())
	if err != nil {
		w.t.Logf("demo: %v", err)
	}
	ports := slices.Clone(w.ports)
	w.res.Commands = map[int]string{}
	for _, pid := range pids {
		cmdline := binproc.CommandLine(pid)
		w.res.Commands[pid] = cmdline
		ports = append(ports, ListeningPorts(cmdline)...)
	}
	var urls []string
	if w.moto != nil {
		urls = append(urls, w.moto.Endpoint())
	}
	if w.env != nil {
		urls = append(urls, w.env.Config.Host)
	}
	for _, u := range urls {
		if parsed, err := url.Parse(u); err == nil {
			if n, err := strconv.Atoi(parsed.Port()); err == nil {
				ports = append(ports, n)
			}
		}
	}
	slices.Sort(ports)
	w.res.Processes, w.res.Ports = pids, slices.Compact(ports)
}

// expectedIPs are the private IPs of the seeded running instances the filters select, with the
// instance except (if any) counted as retagged.
func (w *walk) expectedIPs(except string) []string {
	var out []string
	for _, i := range w.res.Instances {
		if i.State == "running" && Matches(i.Tags) && i.ID != except {
			out = append(out, i.PrivateIP)
		}
	}
	sort.Strings(out)
	return out
}

// sliceIPs are the endpoint addresses of the Upstream's EndpointSlices, sorted.
func (w *walk) sliceIPs(ctx context.Context) ([]string, error) {
	var list discoveryv1.EndpointSliceList
	if err := w.env.Client.List(ctx, &list, client.InNamespace(UpstreamNamespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: discovery.ServiceName(UpstreamName)}); err != nil {
		return nil, fmt.Errorf("listing EndpointSlices: %w", err)
	}
	var out []string
	for _, s := range list.Items {
		for _, e := range s.Endpoints {
			out = append(out, e.Addresses...)
		}
	}
	sort.Strings(out)
	return out, nil
}

// applySecretUntil writes the secret file name holding user's keys, applies it, and waits (as
// what) until a server-side dry run of the tutorial Upstream gives the verdict verdict accepts:
// the dry run's stderr and error.
func (w *walk) applySecretUntil(ctx context.Context, name string, user awsemu.User, what string, verdict func(stderr string, err error) bool) error {
	secret, err := w.writeSecret(name, user)
	if err != nil {
		return err
	}
	if _, err := w.kubectl(ctx, "", "apply", "-f", secret); err != nil {
		return err
	}
	return w.eventually(ctx, what, func() (bool, string) {
		_, stderr, err := w.env.Kubectl(ctx, "apply", "--dry-run=server", "-f", w.path(upstreamFile))
		return verdict(stderr, err), stderr
	})
}

// writeSecret writes the tutorial's secret (examples/seed-secret.yaml: what glooctl stores)
// holding user's keys to LogDir and returns its path. It is annotated to be usable from the
// Upstreams' namespaces.
func (w *walk) writeSecret(name string, user awsemu.User) (string, error) {
	raw, err := os.ReadFile(filepath.Join(w.o.Root, "examples/seed-secret.yaml"))
	if err != nil {
		return "", fmt.Errorf("reading examples/seed-secret.yaml: %w", err)
	}
	var s corev1.Secret
	if err := yaml.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("examples/seed-secret.yaml: %w", err)
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[ec2.AnnotationSecretAllowedNamespaces] = UpstreamNamespace + "," + TeamNamespace
	s.StringData = map[string]string{"aws_access_key_id": user.AccessKeyID, "aws_secret_access_key": user.SecretAccessKey}
	out, err := yaml.Marshal(&s)
	if err != nil {
		return "", fmt.Errorf("encoding the secret: %w", err)
	}
	path := filepath.Join(w.o.LogDir, name)
	header := fmt.Sprintf("# examples/seed-secret.yaml with the access key of moto's IAM user %s, usable from %s and %s.\n",
		user.Name, UpstreamNamespace, TeamNamespace)
	if err := os.WriteFile(path, append([]byte(header), out...), 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}

// kubectl runs kubectl as the admin, prints the command and its output (only the lines
// containing filter, when set) and returns them. A failing command is returned as a Step with
// Err set and no error; err is for kubectl not running at all.
func (w *walk) kubectl(ctx context.Context, filter string, args ...string) (Step, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	full := make([]string, len(args))
	for i, a := range args {
		full[i] = a
		if i > 0 && args[i-1] == "-f" && !filepath.IsAbs(a) {
			full[i] = w.path(a)
		}
	}
	stdout, stderr, err := w.env.Kubectl(ctx, full...)
	s := Step{Command: "kubectl " + strings.Join(relArgs(w.o.Root, args), " "), Stdout: stdout, Stderr: stderr, Err: err}
	if filter != "" {
		shown := s
		shown.Stdout = filterLines(stdout, filter)
		w.print(shown)
		w.note("(only the %s lines of the output)", filter)
	} else {
		w.print(s)
	}
	if err != nil && ctx.Err() != nil {
		return s, fmt.Errorf("interrupted: %w", err)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return s, err
	}
	return s, nil
}

func (w *walk) print(s Step) {
	w.command(s.Command, s.Stdout+s.Stderr)
}

func (w *walk) header(title string) {
	w.step++
	fmt.Fprintf(w.out, "\n%s== %d. %s%s\n", bold(w.out), w.step, title, reset(w.out))
}

func (w *walk) command(cmd, output string) {
	fmt.Fprintf(w.out, "%s$ %s%s\n", bold(w.out), cmd, reset(w.out))
	if output = strings.TrimRight(output, "\n"); output != "" {
		fmt.Fprintln(w.out, output)
	}
}

func (w *walk) note(format string, args ...any) {
	fmt.Fprintf(w.out, "  # "+format+"\n", args...)
}

// eventually polls cond until it holds, ctx ends or three intervals (at least 30s) pass.
func (w *walk) eventually(ctx context.Context, what string, cond func() (bool, string)) error {
	limit := max(30*time.Second, 3*w.o.Interval)
	if last, err := poll.Wait(ctx, limit, cond); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("demo interrupted while waiting for %s: %w", what, ctx.Err())
		}
		return fmt.Errorf("waited %s for %s; last: %s", limit, what, strings.TrimSpace(last))
	}
	return nil
}

// path is a repository path made absolute.
func (w *walk) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(w.o.Root, p)
}

// rel shows a path relative to the repository root when it is inside it.
func (w *walk) rel(p string) string {
	if r, err := filepath.Rel(w.o.Root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// relArgs shows the arguments with paths inside root made relative to it.
func relArgs(root string, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if k, v, ok := strings.Cut(a, "="); ok && filepath.IsAbs(v) {
			if r, err := filepath.Rel(root, v); err == nil && !strings.HasPrefix(r, "..") {
				out[i] = k + "=" + r
			}
			continue
		}
		if filepath.IsAbs(a) {
			if r, err := filepath.Rel(root, a); err == nil && !strings.HasPrefix(r, "..") {
				out[i] = r
			}
		}
	}
	return out
}

func filterLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func mustRead(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

// servingCert writes a new CA and a serving certificate for 127.0.0.1 it signed into dir
// (tls.crt, tls.key, ca.crt) and returns the path of ca.crt.
func servingCert(dir string) (string, error) {
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKeyWithOptions(certutil.SelfSignedCertKeyOptions{
		Host: "127.0.0.1", MaxAge: 24 * time.Hour,
	})
	if err != nil {
		return "", fmt.Errorf("generating the webhook's serving certificate: %w", err)
	}
	// certPEM is the serving certificate followed by the CA that signed it.
	var blocks []*pem.Block
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) != 2 {
		return "", fmt.Errorf("generating the webhook's serving certificate: %d PEM blocks, want the certificate and its CA", len(blocks))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	files := map[string][]byte{
		"tls.crt": pem.EncodeToMemory(blocks[0]),
		"tls.key": keyPEM,
		"ca.crt":  pem.EncodeToMemory(blocks[1]),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return "", fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return filepath.Join(dir, "ca.crt"), nil
}

func bold(w io.Writer) string {
	if isTerminal(w) {
		return "\x1b[1m"
	}
	return ""
}

func reset(w io.Writer) string {
	if isTerminal(w) {
		return "\x1b[0m"
	}
	return ""
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
