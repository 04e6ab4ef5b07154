// Command load is a load generator for ec2guard's admission webhook over TLS on loopback: it serves
// the real validating and mutating handlers (warm caches; Secrets, access reviews and AWS answered
// from memory) and an empty handler on one controller-runtime webhook server, sends concurrent
// AdmissionReviews to each path, and prints p50/p90/p99 latency and throughput per path. The
// empty handler is the baseline of the same run. Requests are bounded by -n per path and the whole
// run by -timeout; nothing leaves 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	ec2admission "github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

//go:embed testdata/seed-upstream-demo.yaml
var upstreamYAML []byte

//go:embed testdata/fixed-policy.json
var fixedPolicy string

// EmptyPath serves the baseline handler.
const EmptyPath = "/empty"

// options are the command's flags.
type options struct {
	requests    int
	concurrency int
	timeout     time.Duration
	format      string
}

// Result is the measurement of one path.
type Result struct {
	Path       string        `json:"path"`
	Requests   int           `json:"requests"`
	Errors     int           `json:"errors"`
	Wall       time.Duration `json:"wallNs"`
	P50        time.Duration `json:"p50Ns"`
	P90        time.Duration `json:"p90Ns"`
	P99        time.Duration `json:"p99Ns"`
	Throughput float64       `json:"requestsPerSecond"`
}

func main() {
	os.Exit(mainWithArgs(os.Args[1:], os.Stdout, os.Stderr))
}

func mainWithArgs(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.timeout)
	defer cancel()
	results, err := run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 1
	}
	if err := report(stdout, opts, results); err != nil {
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.requests, "n", 5000, "requests per path")
	fs.IntVar(&o.concurrency, "c", 16, "concurrent clients")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound of the whole run; paths not finished by then report what they did")
	fs.StringVar(&o.format, "o", "markdown", "output: markdown or json")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case o.requests < 1:
		return o, fmt.Errorf("-n %d: must be at least 1", o.requests)
	case o.concurrency < 1:
		return o, fmt.Errorf("-c %d: must be at least 1", o.concurrency)
	case o.timeout <= 0:
		return o, fmt.Errorf("-timeout %s: must be positive", o.timeout)
	case o.format != "markdown" && o.format != "json":
		return o, fmt.Errorf("-o %q: must be markdown or json", o.format)
	}
	return o, nil
}

// run serves the handlers and measures each path in turn: empty (baseline), validate, mutate.
func run(ctx context.Context, o options) ([]Result, error) {
	ctrllog.SetLogger(logr.Discard())
	certDir, caPEM, err := selfSignedCert()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(certDir)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	handlers, err := newHandlers(ctx)
	if err != nil {
		return nil, err
	}
	srv := webhook.NewServer(webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir})
	srv.Register(ec2admission.ValidatePath, &webhook.Admission{Handler: handlers.Validate})
	srv.Register(ec2admission.MutatePath, &webhook.Admission{Handler: handlers.Mutate})
	srv.Register(EmptyPath, &webhook.Admission{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})})
	srvCtx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Start(srvCtx) }()

	client, err := tlsClient(caPEM, o.concurrency)
	if err != nil {
		return nil, err
	}
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	body, err := reviewBody()
	if err != nil {
		return nil, err
	}
	if err := waitServing(ctx, client, base+EmptyPath, body, served); err != nil {
		return nil, err
	}
	var results []Result
	for _, path := range []string{EmptyPath, ec2admission.ValidatePath, ec2admission.MutatePath} {
		// One request first: it fills the IAM cache, so the measurement sees warm caches.
		if _, err := post(ctx, client, base+path, body); err != nil {
			return nil, fmt.Errorf("warm-up of %s: %w", path, err)
		}
		results = append(results, measure(ctx, client, base+path, path, body, o))
	}
	return results, nil
}

// newHandlers builds the real handlers over in-memory Secrets, access reviews and AWS.
func newHandlers(ctx context.Context) (*ec2admission.Handlers, error) {
	m, err := ec2admission.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		return nil, err
	}
	aws := staticAWS{
		principal: awsclients.Principal{ARN: "arn:aws:iam::123456789012:user/gloo", Account: "123456789012", Type: awsclients.PrincipalUser, Name: "gloo"},
		policy:    fixedPolicy,
	}
	iam, err := ec2admission.NewIAMEvaluator(aws, engine, ec2admission.IAMOptions{}, m, logr.Discard())
	if err != nil {
		return nil, err
	}
	rv := &ec2admission.Reviewer{Secrets: memorySecrets{}, Access: allowAll{}, IAM: iam}
	return ec2admission.NewHandlers(
		&ec2admission.Validator{Reviewer: rv, Enforcement: ec2admission.DefaultEnforcement(), Metrics: m, Log: logr.Discard()},
		&ec2admission.Mutator{Reviewer: rv, Log: logr.Discard()}, m), nil
}

var _ ec2admission.AWS = staticAWS{}

// memorySecrets holds the tutorial's secret with well-shaped fake keys.
type memorySecrets struct{}

func (memorySecrets) Secret(_ context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
	if nn.Namespace != "default" || nn.Name != "gloo-tag-group1" {
		return nil, nil
	}
	s := &corev1.Secret{Data: map[string][]byte{
		"aws_access_key_id":     []byte("AKIAZZZZZZZZZZZZZZZZ"),
		"aws_secret_access_key": []byte("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"),
	}}
	s.Name, s.Namespace, s.UID, s.ResourceVersion = nn.Name, nn.Namespace, "uid-1", "1"
	// The tutorial Upstream is in gloo-system: the secret opts in to that use.
	s.Annotations = map[string]string{ec2.AnnotationSecretAllowedNamespaces: "gloo-system"}
	return s, nil
}

// allowAll allows every access review (the real one is one API call per cross-namespace request).
type allowAll struct{}

func (allowAll) CanGetSecret(context.Context, authenticationv1.UserInfo, types.NamespacedName) (bool, string, error) {
	return true, "", nil
}

// reviewBody is an AdmissionReview creating the tutorial Upstream.
func reviewBody() ([]byte, error) {
	obj, err := yaml.YAMLToJSON(upstreamYAML)
	if err != nil {
		return nil, err
	}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "load",
			Kind:      metav1.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"},
			Resource:  metav1.GroupVersionResource{Group: "gloo.solo.io", Version: "v1", Resource: "upstreams"},
			Namespace: "gloo-system",
			Name:      "ec2-demo-upstream",
			Operation: admissionv1.Create,
			UserInfo:  authenticationv1.UserInfo{Username: "admin", Groups: []string{"system:masters"}},
			Object:    runtime.RawExtension{Raw: obj},
		},
	})
}

// measure sends o.requests requests to url from o.concurrency clients.
func measure(ctx context.Context, client *http.Client, url, path string, body []byte, o options) Result {
	latencies := make([]time.Duration, o.requests)
	var next, done, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(o.requests) || ctx.Err() != nil {
					return
				}
				d, err := post(ctx, client, url, body)
				if err != nil {
					failed.Add(1)
					continue
				}
				latencies[i] = d
				done.Add(1)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	ok := make([]time.Duration, 0, done.Load())
	for _, d := range latencies {
		if d > 0 {
			ok = append(ok, d)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i] < ok[j] })
	r := Result{Path: path, Requests: len(ok), Errors: int(failed.Load()), Wall: wall}
	if len(ok) > 0 {
		r.P50, r.P90, r.P99 = quantile(ok, 0.50), quantile(ok, 0.90), quantile(ok, 0.99)
		r.Throughput = float64(len(ok)) / wall.Seconds()
	}
	return r
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(float64(len(sorted))*q+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// post sends one AdmissionReview and checks that the webhook answered it.
func post(ctx context.Context, client *http.Client, url string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&review)
	d := time.Since(start)
	switch {
	case err != nil:
		return 0, fmt.Errorf("decode the AdmissionReview from %s: %w", url, err)
	case resp.StatusCode != http.StatusOK || review.Response == nil || !review.Response.Allowed:
		return 0, fmt.Errorf("%s: HTTP %d, response %+v", url, resp.StatusCode, review.Response)
	}
	return d, nil
}

func waitServing(ctx context.Context, client *http.Client, url string, body []byte, served <-chan error) error {
	for {
		if _, err := post(ctx, client, url, body); err == nil {
			return nil
		}
		select {
		case err := <-served:
			return fmt.Errorf("the webhook server stopped: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("the webhook server did not serve: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tlsClient trusts only the run's CA and keeps one connection per concurrent client (HTTP/1.1,
// as the API server uses with webhooks served over HTTP/1.1).
func tlsClient(caPEM []byte, conns int) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the generated CA is not PEM")
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			ForceAttemptHTTP2:   false,
		},
	}, nil
}

// selfSignedCert writes tls.crt/tls.key for 127.0.0.1 into a new directory and returns the
// certificate as the CA.
func selfSignedCert() (dir string, certPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("generate the serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ec2guard-load"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", nil, fmt.Errorf("create the serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", nil, err
	}
	dir, err = os.MkdirTemp("", "ec2guard-load-certs-")
	if err != nil {
		return "", nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", nil, err
	}
	return dir, certPEM, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// report prints the results, with each path's latency and throughput as a ratio to the empty
// handler's.
func report(w io.Writer, o options, results []Result) error {
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"requestsPerPath": o.requests, "concurrency": o.concurrency, "results": results})
	}
	var base Result
	for _, r := range results {
		if r.Path == EmptyPath {
			base = r
		}
	}
	fmt.Fprintf(w, "TLS load test on 127.0.0.1: %d requests per path, %d concurrent clients, HTTP/1.1 keep-alive\n\n", o.requests, o.concurrency)
	fmt.Fprintln(w, "| path | requests | errors | p50 | p90 | p99 | throughput (req/s) | p50 vs empty | throughput vs empty |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %.0f | %s | %s |\n", r.Path, r.Requests, r.Errors,
			ms(r.P50), ms(r.P90), ms(r.P99), r.Throughput, ratio(float64(r.P50), float64(base.P50)), ratio(r.Throughput, base.Throughput))
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
