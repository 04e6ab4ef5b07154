// Package awsemu runs moto server, the AWS emulator of the integration tests, and seeds it through
// the real AWS SDK.
//
// Start launches one moto server per call on a free loopback port and stops it when the test ends.
// Server.Config gives an aws.Config that can only ever reach that server: explicit BaseEndpoint,
// the caller's static credentials, no shared config files, no IMDS, small retries. Seeder creates
// IAM principals and policies and EC2 instances with the SDK's own IAM and EC2 clients.
//
// moto is not IAM ground truth: see test/README.md ("What moto does not do") and behaviour_test.go,
// which pins every behaviour the harness relies on.
package awsemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/testenv"
)

const (
	// EnvServer names the moto_server executable; hack/moto.sh prints it.
	EnvServer = "EC2GUARD_MOTO_SERVER"
	// EnvIntegration set to 1 turns a missing EnvServer from a skip into a failure.
	EnvIntegration = testenv.IntegrationEnv
	// AccountID is the account moto puts every resource in (its default, MOTO_ACCOUNT_ID unset).
	AccountID = "123456789012"

	startAttempts  = 5
	startTimeout   = 60 * time.Second
	stopGrace      = 5 * time.Second
	maxLogDumpSize = 64 << 10
)

// Server is one running moto server process.
type Server struct {
	endpoint string
	proc     *binproc.Process
	logPath  string
	client   *awshttp.BuildableClient
}

// Start runs $EC2GUARD_MOTO_SERVER on 127.0.0.1 and a free port, waits until it serves, and stops
// it when the test ends. Its output goes to a log file that is printed only if the test failed.
// Without EC2GUARD_MOTO_SERVER the test is skipped, or fails under EC2GUARD_INTEGRATION=1.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := testenv.Require(tb, EnvServer)
	logPath := filepath.Join(tb.TempDir(), "moto.log")

	var lastErr error
	for range startAttempts {
		s, err := start(bin, logPath)
		if err == nil {
			tb.Cleanup(func() {
				s.Stop()
				if tb.Failed() {
					tb.Logf("moto server log (%s):\n%s", s.endpoint, tail(logPath, maxLogDumpSize))
				}
			})
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	tb.Fatalf("start moto server %s: %v\nlog:\n%s", bin, lastErr, tail(logPath, maxLogDumpSize))
	return nil
}

var errPortInUse = errors.New("port already in use")

// start makes one attempt on a fresh free port; errPortInUse means another process took the port
// between picking and binding it.
func start(bin, logPath string) (*Server, error) {
	addr, err := binproc.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	// Earlier attempts wrote to the same log: this one's output starts at its end.
	var offset int64
	if info, err := os.Stat(logPath); err == nil {
		offset = info.Size()
	}
	p, err := binproc.Launch(binproc.Config{Name: "moto server", Bin: bin, Args: []string{"-H", "127.0.0.1", "-p", port},
		Env: serverEnv(), LogPath: logPath, StopTimeout: stopGrace})
	if err != nil {
		return nil, err
	}
	s := &Server{endpoint: "http://" + addr, proc: p, logPath: logPath, client: loopbackHTTPClient()}
	if err := s.waitReady(offset); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.warmUp(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// warmUp makes moto load its EC2 backend now: the first EC2 call of a server takes about three
// seconds, which would otherwise hit whichever test deadline comes first.
func (s *Server) warmUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	_, err := ec2.NewFromConfig(s.Config("us-east-1", nil)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		return fmt.Errorf("warm up moto's EC2 backend on %s: %w", s.endpoint, err)
	}
	return nil
}

// serverEnv is the test's environment without the variables that would change moto's defaults
// (account id, IAM enforcement), plus unbuffered Python output so the log is complete.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "MOTO_") || name == "INITIAL_NO_AUTH_ACTION_COUNT" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
}

// waitReady waits until this process has bound its port (werkzeug logs "Running on <endpoint>"
// only after the bind, so another server on the same port cannot be mistaken for ours) and answers.
func (s *Server) waitReady(logOffset int64) error {
	deadline := time.Now().Add(startTimeout)
	running := "Running on " + s.endpoint
	for time.Now().Before(deadline) {
		out := readFrom(s.logPath, logOffset)
		select {
		case <-s.proc.Done():
			if strings.Contains(out, "Address already in use") {
				return fmt.Errorf("%s: %w", s.endpoint, errPortInUse)
			}
			return fmt.Errorf("moto server exited before serving on %s", s.endpoint)
		default:
		}
		if strings.Contains(out, running) && s.answers() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("moto server did not serve on %s within %s", s.endpoint, startTimeout)
}

// answers reports whether moto's own API responds (a GET on reset-auth changes nothing).
func (s *Server) answers() bool {
	req, err := http.NewRequest(http.MethodGet, s.endpoint+"/moto-api/reset-auth", nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return bytes.Contains(body, []byte("Moto Auth"))
}

// Endpoint is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) Endpoint() string { return s.endpoint }

// Stop ends the server (its whole process group: TERM, then KILL after a grace period) and waits
// for it. Afterwards its endpoint refuses connections, which is how tests simulate an unreachable
// AWS. Stop is idempotent and also runs at the end of the test.
func (s *Server) Stop() {
	// The exit status is of no interest (moto ends by the signal): the log says why it ended.
	_ = s.proc.Stop()
}

// Reset drops every resource in every region (moto's /moto-api/reset) and turns IAM enforcement
// off again, leaving the server as Start returned it.
func (s *Server) Reset(ctx context.Context) error {
	if err := s.post(ctx, "/moto-api/reset", ""); err != nil {
		return err
	}
	return s.DisableAuth(ctx)
}

// EnableAuth makes moto authenticate and authorize every later request: only access keys of
// seeded users (or sessions from AssumeRole) work, and their identity policies are checked.
// Seed first, or seed afterwards with the keys of a user whose policy allows everything.
// See test/README.md for what moto's IAM check ignores.
func (s *Server) EnableAuth(ctx context.Context) error {
	return s.post(ctx, "/moto-api/reset-auth", "0")
}

// DisableAuth makes moto accept any request again, signed with any credentials (the default).
func (s *Server) DisableAuth(ctx context.Context) error {
	return s.post(ctx, "/moto-api/reset-auth", "inf")
}

func (s *Server) post(ctx context.Context, path, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint+path, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("moto %s: %w", path, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("moto %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("moto %s: status %s: %s", path, resp.Status, msg)
	}
	return nil
}

// Config is an aws.Config for region that sends every call to this server with creds. It is built
// directly, not with config.LoadDefaultConfig, so no shared config or credentials file, no
// environment variable and no IMDS lookup can make it reach real AWS. A nil creds means
// SeedCredentials. Retries: two attempts, short backoff, no retry quota.
func (s *Server) Config(region string, creds aws.CredentialsProvider) aws.Config {
	if creds == nil {
		creds = SeedCredentials()
	}
	return aws.Config{
		Region:       region,
		Credentials:  creds,
		BaseEndpoint: aws.String(s.endpoint),
		HTTPClient:   awsclients.OwnBodies(loopbackHTTPClient()),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 2
				o.MaxBackoff = 200 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// StaticCredentials is a provider of fixed credentials (sessionToken may be empty).
func StaticCredentials(accessKeyID, secretAccessKey, sessionToken string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, sessionToken)
}

// SeedCredentials are the credentials the Seeder signs with. moto accepts any credentials while
// IAM enforcement is off; they belong to no seeded user.
func SeedCredentials() aws.CredentialsProvider {
	return StaticCredentials("AKIAIOSFODNN7EXAMPLE", "awsemu-seed-not-a-secret", "")
}

// loopbackHTTPClient never uses a proxy (the endpoint is loopback) and gives up on a hung call.
func loopbackHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(30 * time.Second).
		WithTransportOptions(func(t *http.Transport) { t.Proxy = nil })
}

// readFrom returns the content of path from offset on ("" when unreadable).
func readFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// tail returns at most the last n bytes of the file at path.
func tail(path string, n int64) string {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	offset := max(info.Size()-n, 0)
	out := readFrom(path, offset)
	if offset > 0 {
		out = "[... earlier output cut ...]\n" + out
	}
	return out
}
