package admission

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

// Test fixtures: the design notes' examples, copied into testdata.
const (
	testUser        = "arn:aws:iam::123456789012:user/gloo"
	testAccessKeyID = "AKIAZZZZZZZZZZZZZZZZ"
	testSecretKey   = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz" // 40 characters, not a real key
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// upstreamJSON converts a testdata YAML manifest to JSON.
func upstreamJSON(t testing.TB, name string) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(readTestdata(t, name))
	if err != nil {
		t.Fatalf("testdata %s: %v", name, err)
	}
	return j
}

// patchJSON applies edit to a JSON object.
func patchJSON(t testing.TB, raw []byte, edit func(obj map[string]any)) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	edit(obj)
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// admissionRequest builds a request for raw.
func admissionRequest(op admissionv1.Operation, raw []byte, user string, groups ...string) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       types.UID("req-1"),
		Operation: op,
		Namespace: "gloo-system",
		Object:    runtime.RawExtension{Raw: raw},
		UserInfo:  authenticationv1.UserInfo{Username: user, Groups: groups},
	}}
}

// testSecret is the Gloo AWS secret of the examples with well-shaped (fake) keys. It lives in
// default and opts in to use by Upstreams in gloo-system and team-a (the examples' namespaces).
func testSecret() *corev1.Secret {
	s := &corev1.Secret{Data: map[string][]byte{
		"aws_access_key_id":     []byte(testAccessKeyID),
		"aws_secret_access_key": []byte(testSecretKey),
	}}
	s.Name, s.Namespace, s.UID, s.ResourceVersion = "gloo-tag-group1", "default", "uid-1", "1"
	s.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: "gloo-system,team-a"}
	return s
}

// fakeSecrets is an in-memory SecretReader that counts its reads.
type fakeSecrets struct {
	mu      sync.Mutex
	secrets map[types.NamespacedName]*corev1.Secret
	err     error
	reads   int
	read    []types.NamespacedName // every secret asked for, in order
}

func newFakeSecrets(ss ...*corev1.Secret) *fakeSecrets {
	f := &fakeSecrets{secrets: map[types.NamespacedName]*corev1.Secret{}}
	for _, s := range ss {
		f.secrets[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	return f
}

func (f *fakeSecrets) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeSecrets) Secret(_ context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
	f.mu.Lock()
	f.reads++
	f.read = append(f.read, nn)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.secrets[nn], nil
}

// fakeAccess answers access reviews from a set of allowed users and records the questions.
type fakeAccess struct {
	mu      sync.Mutex
	allowed map[string]bool
	err     error
	asked   []string
}

func (f *fakeAccess) CanGetSecret(_ context.Context, user authenticationv1.UserInfo, nn types.NamespacedName) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, user.Username+" "+nn.String())
	if f.err != nil {
		return false, "", f.err
	}
	if f.allowed[user.Username] {
		return true, "RBAC: allowed", nil
	}
	return false, "", nil
}

// fakeAWS answers with a fixed principal and policy documents; block makes every call wait until
// the context ends.
type fakeAWS struct {
	mu        sync.Mutex
	principal awsclients.Principal
	prinErr   error                        // every Principal call fails
	roleErr   error                        // Principal calls with a roleArn fail
	policies  map[string]*collect.Policies // by principal ARN
	polErr    error
	dryRun    collect.Result
	simulate  collect.Result
	block     bool
	panicOn   string // the call (principal, policies, dry-run, simulate) that panics
	calls     map[string]int
	asked     []string // principal ARNs whose policies were collected, in order
}

func newFakeAWS(policyJSON string) *fakeAWS {
	return &fakeAWS{
		principal: awsclients.Principal{ARN: testUser, CallerARN: testUser, Account: "123456789012", Type: awsclients.PrincipalUser, Name: "gloo"},
		policies: map[string]*collect.Policies{testUser: {
			Principal: testUser, PrincipalType: "user", Account: "123456789012",
			Identity: []collect.Document{{Origin: collect.Origin{Type: collect.Inline, AttachedTo: "user/gloo", Name: "ec2guard"}, JSON: policyJSON}},
		}},
		calls: map[string]int{},
	}
}

func (f *fakeAWS) count(api string) {
	f.mu.Lock()
	f.calls[api]++
	f.mu.Unlock()
	if f.panicOn == api {
		panic("test: injected panic in " + api)
	}
}

// Total is the number of AWS calls of every kind.
func (f *fakeAWS) Total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

func (f *fakeAWS) Calls(api string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[api]
}

func (f *fakeAWS) wait(ctx context.Context) error {
	if !f.block {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeAWS) Principal(ctx context.Context, r awsclients.Request) (awsclients.Principal, error) {
	f.count("principal")
	if err := f.wait(ctx); err != nil {
		return awsclients.Principal{}, err
	}
	if r.RoleARN != "" && f.roleErr != nil {
		return awsclients.Principal{}, f.roleErr
	}
	if f.prinErr != nil {
		return awsclients.Principal{}, f.prinErr
	}
	return f.principal, nil
}

func (f *fakeAWS) Policies(ctx context.Context, _ awsclients.Request, principalARN string) (*collect.Policies, error) {
	f.count("policies")
	f.mu.Lock()
	f.asked = append(f.asked, "policies "+principalARN)
	f.mu.Unlock()
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	if f.polErr != nil {
		return nil, f.polErr
	}
	p, ok := f.policies[principalARN]
	if !ok {
		return nil, &collect.NotFoundError{Principal: principalARN, Where: "the fake"}
	}
	return p, nil
}

func (f *fakeAWS) RolePolicies(ctx context.Context, r awsclients.Request, roleARN string) (*collect.Policies, error) {
	f.count("own-policies")
	f.mu.Lock()
	f.asked = append(f.asked, "own-policies "+roleARN)
	f.mu.Unlock()
	if err := f.wait(ctx); err != nil {
		return nil, err
	}
	p, ok := f.policies[roleARN]
	if !ok {
		return nil, &collect.NotFoundError{Principal: roleARN, Where: "the fake"}
	}
	return p, nil
}

func (f *fakeAWS) DryRun(ctx context.Context, _ awsclients.Request) collect.Result {
	f.count("dry-run")
	if err := f.wait(ctx); err != nil {
		return collect.Result{Source: collect.SourceDryRun, Decision: collect.Unknown, Reason: err.Error()}
	}
	return f.dryRun
}

func (f *fakeAWS) Simulate(ctx context.Context, _ awsclients.Request, _ string) collect.Result {
	f.count("simulate")
	if err := f.wait(ctx); err != nil {
		return collect.Result{Source: collect.SourceAWSSimulator, Decision: collect.Unknown, Reason: err.Error()}
	}
	return f.simulate
}

// engineOnce shares one compiled engine between the tests of this package (compiling the Rego is
// the slow part).
var engineOnce = sync.OnceValues(func() (*policycheck.Engine, error) {
	return policycheck.NewEngine(context.Background())
})

func testEngine(t testing.TB) *policycheck.Engine {
	t.Helper()
	e, err := engineOnce()
	if err != nil {
		t.Fatalf("IAM engine: %v", err)
	}
	return e
}

func testMetrics(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func testEvaluator(t testing.TB, aws AWS, m *Metrics, opts IAMOptions) *IAMEvaluator {
	t.Helper()
	if opts.Deadline == 0 {
		opts.Deadline = 10 * time.Second
	}
	e, err := NewIAMEvaluator(aws, testEngine(t), opts, m, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testEvaluatorLog(t testing.TB, aws AWS, m *Metrics, log logr.Logger) *IAMEvaluator {
	t.Helper()
	e, err := NewIAMEvaluator(aws, testEngine(t), IAMOptions{Deadline: 10 * time.Second}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testHandlers builds the composed handlers over fakes.
func testHandlers(t testing.TB, aws AWS, secrets SecretReader, access AccessReviewer, enf Enforcement) (*Handlers, *prometheus.Registry) {
	t.Helper()
	m, reg := testMetrics(t)
	rv := &Reviewer{Secrets: secrets, Access: access, IAM: testEvaluator(t, aws, m, IAMOptions{})}
	return NewHandlers(
		&Validator{Reviewer: rv, Enforcement: enf, Metrics: m, Log: logr.Discard()},
		&Mutator{Reviewer: rv, Log: logr.Discard()}, m), reg
}

func discardLog() logr.Logger { return logr.Discard() }

// counterValue returns the value of the counter name with exactly the given labels (0 if absent).
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// errNoSecretsExpected fails a test path that should not read Secrets.
var errNoSecretsExpected = errors.New("test: no secret read expected")
