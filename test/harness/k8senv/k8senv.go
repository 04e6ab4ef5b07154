// Package k8senv starts a real kube-apiserver and etcd for integration tests
// (through controller-runtime's envtest), installs the CRDs in
// test/fixtures/crds and optional admission webhook configurations, and runs
// the real kubectl binary against it.
//
// The binaries come from hack/k8s-assets.sh (run by `make test-env`), which
// exports KUBEBUILDER_ASSETS (kube-apiserver and etcd) and EC2GUARD_KUBECTL.
package k8senv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ec2guard/ec2guard/test/harness/testenv"
)

// Environment variables read by Start and Kubectl.
const (
	// AssetsEnv names the directory holding kube-apiserver and etcd.
	AssetsEnv = "KUBEBUILDER_ASSETS"
	// KubectlEnv names the kubectl binary run by (*Env).Kubectl.
	KubectlEnv = "EC2GUARD_KUBECTL"
	// IntegrationEnv, when "1", turns missing test assets into a test failure instead of a skip.
	IntegrationEnv = testenv.IntegrationEnv
)

// FixtureCRDDir is the directory, relative to the repository root, whose CRDs
// Start always installs.
const FixtureCRDDir = "test/fixtures/crds"

// Options configures Start. The zero value starts an API server with the
// fixture CRDs and no webhooks.
type Options struct {
	// CRDPaths are extra files or directories of CRD manifests installed in
	// addition to those in FixtureCRDDir.
	CRDPaths []string

	// ValidatingWebhooks and MutatingWebhooks are installed after the CRDs.
	// Each webhook's clientConfig must use service with a path: envtest
	// replaces it with the URL https://<host>:<port><path> of the local
	// webhook server (see (*Env).ServeWebhooks) and sets the CA bundle. The
	// objects passed in are not modified.
	ValidatingWebhooks []*admissionregistrationv1.ValidatingWebhookConfiguration
	MutatingWebhooks   []*admissionregistrationv1.MutatingWebhookConfiguration

	// Scheme is used by Env.Client. Default: client-go's scheme plus apiextensions/v1.
	Scheme *runtime.Scheme
}

// WebhookServing is where the API server expects the test's webhook server:
// the host and port the webhook URLs point to, and the directory holding the
// serving certificate (tls.crt, tls.key) that CAData signs.
type WebhookServing struct {
	Host    string
	Port    int
	CertDir string
	CAData  []byte
}

// Env is a running API server with etcd, stopped when the test ends.
type Env struct {
	// Config authenticates as the admin user (group system:masters, which
	// may also impersonate any user).
	Config *rest.Config
	// Client is a controller-runtime client using Config.
	Client client.Client
	// KubeconfigPath is a kubeconfig file for the admin user.
	KubeconfigPath string
	// Webhook is where webhook servers must listen (see ServeWebhooks).
	Webhook WebhookServing

	kubectlPath string
	cacheDir    string
	testEnv     *envtest.Environment
}

// Start starts kube-apiserver and etcd from $KUBEBUILDER_ASSETS, installs the
// fixture CRDs, opts.CRDPaths and opts' webhook configurations, and stops
// everything in t.Cleanup. Without $KUBEBUILDER_ASSETS the test is skipped,
// or fails when EC2GUARD_INTEGRATION=1.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	assets := RequireEnv(t, AssetsEnv)

	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("k8senv: %v", err)
	}
	validating, mutating, err := copyWebhooks(opts.ValidatingWebhooks, opts.MutatingWebhooks)
	if err != nil {
		t.Fatalf("k8senv: %v", err)
	}
	scheme := opts.Scheme
	if scheme == nil {
		if scheme, err = defaultScheme(); err != nil {
			t.Fatalf("k8senv: %v", err)
		}
	}

	logDir, err := os.MkdirTemp("", "k8senv-logs-")
	if err != nil {
		t.Fatalf("k8senv: creating control plane log directory: %v", err)
	}
	apiLog, etcdLog, err := openLogs(logDir)
	if err != nil {
		t.Fatalf("k8senv: %v", err)
	}
	t.Cleanup(func() { closeLogs(t, logDir, apiLog, etcdLog) })

	testEnv := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		ControlPlane: envtest.ControlPlane{
			APIServer: &envtest.APIServer{Out: apiLog, Err: apiLog},
			Etcd:      &envtest.Etcd{Out: etcdLog, Err: etcdLog},
		},
		CRDDirectoryPaths:     append([]string{filepath.Join(root, FixtureCRDDir)}, opts.CRDPaths...),
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		WebhookInstallOptions: envtest.WebhookInstallOptions{
			ValidatingWebhooks: validating,
			MutatingWebhooks:   mutating,
		},
	}
	cfg, err := testEnv.Start()
	if err != nil {
		// Start may have started some processes before failing.
		if stopErr := testEnv.Stop(); stopErr != nil {
			t.Logf("k8senv: stopping after failed start: %v", stopErr)
		}
		t.Fatalf("k8senv: starting kube-apiserver and etcd from %s (logs in %s): %v", assets, logDir, err)
	}
	t.Cleanup(func() {
		if err := testEnv.Stop(); err != nil {
			t.Errorf("k8senv: stopping control plane: %v", err)
		}
	})

	env := &Env{
		Config:  cfg,
		testEnv: testEnv,
		Webhook: WebhookServing{
			Host:    testEnv.WebhookInstallOptions.LocalServingHost,
			Port:    testEnv.WebhookInstallOptions.LocalServingPort,
			CertDir: testEnv.WebhookInstallOptions.LocalServingCertDir,
			CAData:  testEnv.WebhookInstallOptions.LocalServingCAData,
		},
		kubectlPath: os.Getenv(KubectlEnv),
	}
	if env.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		t.Fatalf("k8senv: creating client: %v", err)
	}
	dir := t.TempDir()
	env.KubeconfigPath = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(env.KubeconfigPath, testEnv.KubeConfig, 0o600); err != nil {
		t.Fatalf("k8senv: writing kubeconfig: %v", err)
	}
	env.cacheDir = filepath.Join(dir, "kubectl-cache")
	return env
}

// RequireEnv returns the value of the environment variable name. When it is
// empty the test is skipped with a hint to run `make test-env`, or fails if
// EC2GUARD_INTEGRATION=1.
func RequireEnv(t testing.TB, name string) string {
	t.Helper()
	return testenv.Require(t, name)
}

// RepoRoot finds the repository root: the nearest directory at or above the
// working directory that holds a go.mod and test/fixtures/crds.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding repository root: %w", err)
	}
	for dir := wd; ; {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, FixtureCRDDir)) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("finding repository root: no directory above %s holds go.mod and %s", wd, FixtureCRDDir)
		}
		dir = parent
	}
}

// AddUser provisions a user authenticated by client certificate and returns
// its REST config and a kubeconfig file for it. The user has no permissions
// until RBAC grants some; for kubectl, impersonation (--as, --as-group) from
// the admin kubeconfig is usually simpler.
func (e *Env) AddUser(t testing.TB, name string, groups ...string) (*rest.Config, string) {
	t.Helper()
	user, err := e.testEnv.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		t.Fatalf("k8senv: adding user %q: %v", name, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("k8senv: kubeconfig for user %q: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatalf("k8senv: writing kubeconfig for user %q: %v", name, err)
	}
	return user.Config(), path
}

func defaultScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building scheme: client-go types: %w", err)
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building scheme: apiextensions/v1: %w", err)
	}
	return s, nil
}

// copyWebhooks deep-copies the configurations (envtest rewrites them) and
// checks that every webhook can be pointed at the local server.
func copyWebhooks(
	validating []*admissionregistrationv1.ValidatingWebhookConfiguration,
	mutating []*admissionregistrationv1.MutatingWebhookConfiguration,
) ([]*admissionregistrationv1.ValidatingWebhookConfiguration, []*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	var errs []error
	vs := make([]*admissionregistrationv1.ValidatingWebhookConfiguration, 0, len(validating))
	for i, c := range validating {
		if c == nil {
			errs = append(errs, fmt.Errorf("Options.ValidatingWebhooks[%d] is nil", i))
			continue
		}
		for j, w := range c.Webhooks {
			errs = append(errs, checkClientConfig(fmt.Sprintf("Options.ValidatingWebhooks[%d] (%s).webhooks[%d] (%s)", i, c.Name, j, w.Name), w.ClientConfig))
		}
		vs = append(vs, c.DeepCopy())
	}
	ms := make([]*admissionregistrationv1.MutatingWebhookConfiguration, 0, len(mutating))
	for i, c := range mutating {
		if c == nil {
			errs = append(errs, fmt.Errorf("Options.MutatingWebhooks[%d] is nil", i))
			continue
		}
		for j, w := range c.Webhooks {
			errs = append(errs, checkClientConfig(fmt.Sprintf("Options.MutatingWebhooks[%d] (%s).webhooks[%d] (%s)", i, c.Name, j, w.Name), w.ClientConfig))
		}
		ms = append(ms, c.DeepCopy())
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return vs, ms, nil
}

func checkClientConfig(where string, cc admissionregistrationv1.WebhookClientConfig) error {
	if cc.Service == nil || cc.Service.Path == nil || *cc.Service.Path == "" {
		return fmt.Errorf("%s: clientConfig.service.path must be set; envtest points it at the local webhook server", where)
	}
	if cc.URL != nil {
		return fmt.Errorf("%s: clientConfig.url must be empty; envtest derives it from clientConfig.service.path", where)
	}
	return nil
}

func openLogs(dir string) (apiLog, etcdLog *os.File, err error) {
	apiLog, err = os.Create(filepath.Join(dir, "kube-apiserver.log"))
	if err != nil {
		return nil, nil, fmt.Errorf("creating kube-apiserver log: %w", err)
	}
	etcdLog, err = os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		_ = apiLog.Close()
		return nil, nil, fmt.Errorf("creating etcd log: %w", err)
	}
	return apiLog, etcdLog, nil
}

// closeLogs keeps the control plane logs when the test failed and removes them otherwise.
func closeLogs(t testing.TB, dir string, files ...*os.File) {
	for _, f := range files {
		if err := f.Close(); err != nil {
			t.Logf("k8senv: closing %s: %v", f.Name(), err)
		}
	}
	if t.Failed() {
		t.Logf("k8senv: kube-apiserver and etcd logs kept in %s", dir)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("k8senv: removing %s: %v", dir, err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
