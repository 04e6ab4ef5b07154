package awsclients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/internal/awstest"
	ec2model "github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

const (
	testKeyID     = "AKIAUNITTEST0000MPLE"
	testSecretKey = "unitTestSecretKey/0123456789abcdefghijklm" // 40 characters
	assumedKeyID  = "ASIAASSUMED00000ROLE"
	assumedSecret = "assumedSecretKey/0123456789abcdefghijklmn"
	assumedToken  = "assumed-session-token-value"
)

// fakeSTS answers the STS Query protocol and records what it was asked.
type fakeSTS struct {
	mu    sync.Mutex
	calls map[string]int
	forms []map[string]string
	auth  []string // Authorization headers, in order
	// callerARN is returned by GetCallerIdentity.
	callerARN string
	// errCode, when set, is returned for action errAction.
	errAction, errCode string
	// gate, when set, holds GetCallerIdentity until closed.
	gate chan struct{}
}

func newFakeSTS(t *testing.T, f *fakeSTS) *httptest.Server {
	t.Helper()
	f.calls = map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		action := r.PostForm.Get("Action")
		f.mu.Lock()
		f.calls[action]++
		form := map[string]string{}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		f.forms = append(f.forms, form)
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		gate := f.gate
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		if action == f.errAction {
			w.WriteHeader(403)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>User: arn:aws:iam::111122223333:user/gloo is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>x</RequestId></ErrorResponse>`, f.errCode)
			return
		}
		switch action {
		case "GetCallerIdentity":
			if gate != nil {
				select {
				case <-gate:
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>AIDAEXAMPLE</UserId><Account>111122223333</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, f.callerARN)
		case "AssumeRole", "AssumeRoleWithWebIdentity":
			exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
			fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials><AccessKeyId>%[2]s</AccessKeyId><SecretAccessKey>%[3]s</SecretAccessKey><SessionToken>%[4]s</SessionToken><Expiration>%[5]s</Expiration></Credentials><AssumedRoleUser><Arn>arn:aws:sts::111122223333:assumed-role/reader/s</Arn><AssumedRoleId>AROAEXAMPLE:s</AssumedRoleId></AssumedRoleUser></%[1]sResult><ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></%[1]sResponse>`,
				action, assumedKeyID, assumedSecret, assumedToken, exp)
		default:
			w.WriteHeader(400)
			fmt.Fprintf(w, `<ErrorResponse><Error><Code>InvalidAction</Code><Message>%s</Message></Error></ErrorResponse>`, action)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (f *fakeSTS) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func (f *fakeSTS) formOf(action string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, fm := range f.forms {
		if fm["Action"] == action {
			return fm
		}
	}
	return nil
}

func (f *fakeSTS) authOf(action string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, fm := range f.forms {
		if fm["Action"] == action {
			return f.auth[i]
		}
	}
	return ""
}

func secretVersion(ns, name, uid, rv, keyID, secretKey string) *SecretVersion {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), ResourceVersion: rv},
		Data:       map[string][]byte{"aws_access_key_id": []byte(keyID), "aws_secret_access_key": []byte(secretKey)},
	}
	creds, _ := ec2model.ParseSecret(s)
	return NewSecretVersion(s, creds)
}

func newTestFactory(t *testing.T, endpoint string, logs *bytes.Buffer) *Factory {
	t.Helper()
	opts := Options{
		Endpoint:   endpoint,
		HTTPClient: LoopbackOnlyHTTPClient(),
		Retry:      ec2api.RetryOptions{MaxAttempts: 2, Backoff: retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })},
	}
	if logs != nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := NewFactory(opts)
	if err != nil {
		t.Fatalf("NewFactory: %v", err)
	}
	return f
}

func TestParseCallerARN(t *testing.T) {
	for _, tc := range []struct {
		in, arn, typ, name, session string
	}{
		{"arn:aws:iam::111122223333:user/gloo", "arn:aws:iam::111122223333:user/gloo", PrincipalUser, "gloo", ""},
		{"arn:aws:iam::111122223333:user/team/a/gloo", "arn:aws:iam::111122223333:user/team/a/gloo", PrincipalUser, "gloo", ""},
		{"arn:aws:sts::111122223333:assumed-role/reader/ec2guard-ns-s", "arn:aws:iam::111122223333:role/reader", PrincipalRole, "reader", "ec2guard-ns-s"},
		{"arn:aws-cn:sts::111122223333:assumed-role/r/s", "arn:aws-cn:iam::111122223333:role/r", PrincipalRole, "r", "s"},
		{"arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:root", PrincipalRoot, "", ""},
		{"arn:aws:sts::111122223333:federated-user/bob", "arn:aws:sts::111122223333:federated-user/bob", PrincipalFederatedUser, "bob", ""},
		{"arn:aws:sts::123456789012:user/moto", "arn:aws:sts::123456789012:user/moto", PrincipalUnknown, "", ""},
	} {
		p, err := ParseCallerARN(tc.in)
		if err != nil {
			t.Errorf("ParseCallerARN(%q): %v", tc.in, err)
			continue
		}
		if p.ARN != tc.arn || p.Type != tc.typ || p.Name != tc.name || p.SessionName != tc.session || p.CallerARN != tc.in || p.Account == "" {
			t.Errorf("ParseCallerARN(%q) = %+v, want ARN %s type %s name %q session %q", tc.in, p, tc.arn, tc.typ, tc.name, tc.session)
		}
	}
	for _, bad := range []string{"", "not-an-arn", "arn:aws:sts::1:assumed-role/"} {
		if _, err := ParseCallerARN(bad); err == nil {
			t.Errorf("ParseCallerARN(%q): want an error", bad)
		}
	}
}

func TestSessionName(t *testing.T) {
	valid := regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	if got := SessionName(types.NamespacedName{Namespace: "team-a", Name: "aws-creds"}); got != "ec2guard-team-a-aws-creds" {
		t.Errorf("SessionName = %q", got)
	}
	if got := SessionName(types.NamespacedName{}); got != "ec2guard" {
		t.Errorf("default-chain SessionName = %q", got)
	}
	long1 := SessionName(types.NamespacedName{Namespace: strings.Repeat("n", 60), Name: strings.Repeat("x", 60) + "1"})
	long2 := SessionName(types.NamespacedName{Namespace: strings.Repeat("n", 60), Name: strings.Repeat("x", 60) + "2"})
	for _, s := range []string{long1, long2, SanitizeSessionName("a b/c:d*é"), SanitizeSessionName("")} {
		if !valid.MatchString(s) {
			t.Errorf("session name %q breaks AWS's rules", s)
		}
	}
	if long1 == long2 {
		t.Errorf("long names collide: %q", long1)
	}
	if SanitizeSessionName("a b/c") != "a-b-c" {
		t.Errorf("SanitizeSessionName(a b/c) = %q", SanitizeSessionName("a b/c"))
	}
}

func TestFactoryCachesPerSecretVersion(t *testing.T) {
	awstest.IsolateEnv(t)
	f := newTestFactory(t, "http://127.0.0.1:1", nil)
	ctx := context.Background()
	v1 := secretVersion("ns", "creds", "uid-1", "10", testKeyID, testSecretKey)
	r := Request{Region: "us-east-1", Secret: v1}

	c1, err := f.Get(ctx, r)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	c1b, _ := f.Get(ctx, r)
	if c1 != c1b {
		t.Error("an unchanged secret must reuse the cached clients")
	}
	other, _ := f.Get(ctx, Request{Region: "eu-west-1", Secret: v1})
	withRole, _ := f.Get(ctx, Request{Region: "us-east-1", Secret: v1, RoleARN: "arn:aws:iam::111122223333:role/r"})
	if other == c1 || withRole == c1 || f.Len() != 3 {
		t.Errorf("region and role must be part of the key (Len %d)", f.Len())
	}

	v2 := secretVersion("ns", "creds", "uid-1", "11", "AKIAUNITTEST0000NEW2", testSecretKey)
	c2, err := f.Get(ctx, Request{Region: "us-east-1", Secret: v2})
	if err != nil {
		t.Fatalf("Get v2: %v", err)
	}
	if c2 == c1 {
		t.Fatal("a new resourceVersion must build new clients")
	}
	creds, err := c2.Config.Credentials.Retrieve(ctx)
	if err != nil || creds.AccessKeyID != "AKIAUNITTEST0000NEW2" {
		t.Errorf("v2 credentials = %q, %v", creds.AccessKeyID, err)
	}
	if f.Len() != 1 {
		t.Errorf("Len = %d after a secret update, want 1 (older versions evicted)", f.Len())
	}
	if c2.MaskedAccessKeyID() != "AKIA****NEW2" {
		t.Errorf("MaskedAccessKeyID = %q", c2.MaskedAccessKeyID())
	}
}

// TestDedicatedAccountStatement: the secret owner's ec2guard.io/dedicated-account statement is
// part of the secret version and of the clients built from it; the default chain never has it.
func TestDedicatedAccountStatement(t *testing.T) {
	awstest.IsolateEnv(t)
	f := newTestFactory(t, "http://127.0.0.1:1", nil)
	ctx := context.Background()
	for _, tc := range []struct {
		value string
		want  bool
	}{{"true", true}, {"", false}, {"yes", false}, {"false", false}} {
		v := secretVersion("ns", "creds", "uid-"+tc.value, "1", testKeyID, testSecretKey)
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds", UID: v.UID, ResourceVersion: "1",
			Annotations: map[string]string{ec2model.AnnotationSecretDedicatedAccount: tc.value}}}
		v = NewSecretVersion(s, v.Credentials)
		c, err := f.Get(ctx, Request{Region: "us-east-1", Secret: v})
		if err != nil {
			t.Fatal(err)
		}
		if v.DedicatedAccount != tc.want || c.DedicatedAccount != tc.want {
			t.Errorf("annotation %q: secret version %v, clients %v; want %v", tc.value, v.DedicatedAccount, c.DedicatedAccount, tc.want)
		}
	}
}

func TestFactoryBounded(t *testing.T) {
	awstest.IsolateEnv(t)
	f, err := NewFactory(Options{MaxEntries: 2, HTTPClient: LoopbackOnlyHTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("ns", "s", fmt.Sprint("uid-", i), "1", testKeyID, testSecretKey)}); err != nil {
			t.Fatal(err)
		}
	}
	if f.Len() != 2 {
		t.Errorf("Len = %d, want the bound 2", f.Len())
	}
}

func TestFactoryRejectsBadRequests(t *testing.T) {
	awstest.IsolateEnv(t)
	f := newTestFactory(t, "", nil)
	if _, err := f.Get(context.Background(), Request{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("empty region: err = %v", err)
	}
	v := secretVersion("ns", "s", "", "1", testKeyID, testSecretKey)
	if _, err := f.Get(context.Background(), Request{Region: "us-east-1", Secret: v}); err == nil || !strings.Contains(err.Error(), "ns/s") {
		t.Errorf("secret without UID: err = %v", err)
	}
}

func TestPrincipalFromSecretCachedAndShared(t *testing.T) {
	awstest.IsolateEnv(t)
	fs := &fakeSTS{callerARN: "arn:aws:iam::111122223333:user/gloo", gate: make(chan struct{})}
	srv := newFakeSTS(t, fs)
	var logs bytes.Buffer
	f := newTestFactory(t, srv.URL, &logs)
	c, err := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("ns", "creds", "u", "1", testKeyID, testSecretKey)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	var started sync.WaitGroup
	results := make([]Principal, n)
	errs := make([]error, n)
	started.Add(n)
	for i := range n {
		wg.Go(func() {
			started.Done()
			results[i], errs[i] = c.Principal(context.Background())
		})
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond) // let the callers join the in-flight call
	close(fs.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || results[i].ARN != "arn:aws:iam::111122223333:user/gloo" || results[i].Type != PrincipalUser {
			t.Errorf("caller %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if got := fs.count("GetCallerIdentity"); got < 1 || got > 2 {
		t.Errorf("GetCallerIdentity calls = %d for %d concurrent callers, want them shared", got, n)
	}
	before := fs.count("GetCallerIdentity")
	if _, err := c.Principal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs.count("GetCallerIdentity") != before {
		t.Error("a resolved principal must be reused within its TTL")
	}
	if !strings.Contains(fs.authOf("GetCallerIdentity"), "Credential="+testKeyID+"/") {
		t.Errorf("GetCallerIdentity not signed with the secret's key: %q", fs.authOf("GetCallerIdentity"))
	}
	if strings.Contains(logs.String(), testSecretKey) || strings.Contains(logs.String(), testKeyID) {
		t.Errorf("logs show the secret key or the full key id:\n%s", logs.String())
	}
}

func TestInvalidKeyGivesClearError(t *testing.T) {
	awstest.IsolateEnv(t)
	for _, code := range []string{"InvalidClientTokenId", "SignatureDoesNotMatch", "AuthFailure"} {
		t.Run(code, func(t *testing.T) {
			fs := &fakeSTS{errAction: "GetCallerIdentity", errCode: code}
			srv := newFakeSTS(t, fs)
			f := newTestFactory(t, srv.URL, nil)
			c, _ := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("team-a", "aws-creds", "u", "1", testKeyID, testSecretKey)})
			_, err := c.Principal(context.Background())
			var ic *InvalidCredentialsError
			if !errors.As(err, &ic) || ic.Code != code {
				t.Fatalf("err = %v, want *InvalidCredentialsError %s", err, code)
			}
			msg := err.Error()
			if !strings.Contains(msg, "the access key in secret team-a/aws-creds is not valid") || !strings.Contains(msg, "AKIA****MPLE") {
				t.Errorf("message %q lacks the secret name or the masked key id", msg)
			}
			if strings.Contains(msg, testSecretKey) || strings.Contains(msg, testKeyID) {
				t.Errorf("message %q shows the secret key or the full key id", msg)
			}
			if !IsInvalidCredentials(err) {
				t.Error("IsInvalidCredentials = false")
			}
		})
	}
}

func TestRoleAssumedWithStableSessionName(t *testing.T) {
	awstest.IsolateEnv(t)
	fs := &fakeSTS{callerARN: "arn:aws:sts::111122223333:assumed-role/reader/ec2guard-team-a-aws-creds"}
	srv := newFakeSTS(t, fs)
	f := newTestFactory(t, srv.URL, nil)
	r := Request{Region: "us-east-1", Secret: secretVersion("team-a", "aws-creds", "u", "1", testKeyID, testSecretKey), RoleARN: "arn:aws:iam::111122223333:role/reader"}
	c, err := f.Get(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Principal(context.Background())
	if err != nil {
		t.Fatalf("Principal: %v", err)
	}
	if p.ARN != "arn:aws:iam::111122223333:role/reader" || p.Type != PrincipalRole {
		t.Errorf("principal = %+v, want the role", p)
	}
	ar := fs.formOf("AssumeRole")
	if ar["RoleArn"] != r.RoleARN || ar["RoleSessionName"] != "ec2guard-team-a-aws-creds" {
		t.Errorf("AssumeRole form = %v", ar)
	}
	if !strings.Contains(fs.authOf("AssumeRole"), "Credential="+testKeyID+"/") {
		t.Error("AssumeRole must be signed with the base key")
	}
	if !strings.Contains(fs.authOf("GetCallerIdentity"), "Credential="+assumedKeyID+"/") {
		t.Error("GetCallerIdentity must be signed with the assumed role's key")
	}
	c.ForgetPrincipal()
	if _, err := c.Principal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs.count("AssumeRole") != 1 || fs.count("GetCallerIdentity") != 2 {
		t.Errorf("AssumeRole %d, GetCallerIdentity %d: want the assumed credentials cached (1) and 2 identity calls",
			fs.count("AssumeRole"), fs.count("GetCallerIdentity"))
	}
}

func TestAssumeRoleDenied(t *testing.T) {
	awstest.IsolateEnv(t)
	fs := &fakeSTS{errAction: "AssumeRole", errCode: "AccessDenied"}
	srv := newFakeSTS(t, fs)
	f := newTestFactory(t, srv.URL, nil)
	c, _ := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("ns", "s", "u", "1", testKeyID, testSecretKey), RoleARN: "arn:aws:iam::111122223333:role/reader"})
	_, err := c.Principal(context.Background())
	var ar *AssumeRoleError
	if !errors.As(err, &ar) || ar.Code != "AccessDenied" || !strings.Contains(err.Error(), "arn:aws:iam::111122223333:role/reader") {
		t.Fatalf("err = %v, want *AssumeRoleError AccessDenied naming the role", err)
	}
	if IsInvalidCredentials(err) {
		t.Error("an AccessDenied on AssumeRole is not an invalid key")
	}
}

func TestAssumeRoleWithInvalidBaseKey(t *testing.T) {
	awstest.IsolateEnv(t)
	fs := &fakeSTS{errAction: "AssumeRole", errCode: "InvalidClientTokenId"}
	srv := newFakeSTS(t, fs)
	f := newTestFactory(t, srv.URL, nil)
	c, _ := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("ns", "s", "u", "1", testKeyID, testSecretKey), RoleARN: "arn:aws:iam::111122223333:role/reader"})
	_, err := c.Principal(context.Background())
	var ic *InvalidCredentialsError
	if !errors.As(err, &ic) || !strings.Contains(err.Error(), "the access key in secret ns/s is not valid") {
		t.Fatalf("err = %v, want *InvalidCredentialsError for the base key", err)
	}
}

func TestDefaultChainFromEnvironment(t *testing.T) {
	awstest.IsolateEnv(t)
	fs := &fakeSTS{callerARN: "arn:aws:iam::111122223333:user/pod"}
	srv := newFakeSTS(t, fs)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret-key")
	f := newTestFactory(t, srv.URL, nil)
	c, err := f.Get(context.Background(), Request{Region: "eu-west-1"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	p, err := c.Principal(context.Background())
	if err != nil || p.ARN != "arn:aws:iam::111122223333:user/pod" {
		t.Fatalf("principal = %+v, %v", p, err)
	}
	if !strings.Contains(fs.authOf("GetCallerIdentity"), "Credential=AKIAFROMENVIRONMENT1/") {
		t.Errorf("not signed with the environment's key: %q", fs.authOf("GetCallerIdentity"))
	}
	if c.Key.CredentialSource() != "the pod's default AWS credentials" {
		t.Errorf("CredentialSource = %q", c.Key.CredentialSource())
	}
}

func TestDefaultChainWebIdentity(t *testing.T) {
	awstest.IsolateEnv(t)
	fs := &fakeSTS{callerARN: "arn:aws:sts::111122223333:assumed-role/irsa-role/pod-session"}
	srv := newFakeSTS(t, fs)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/irsa-role")
	t.Setenv("AWS_ROLE_SESSION_NAME", "pod-session")
	f := newTestFactory(t, srv.URL, nil)
	c, err := f.Get(context.Background(), Request{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Principal(context.Background())
	if err != nil || p.ARN != "arn:aws:iam::111122223333:role/irsa-role" {
		t.Fatalf("principal = %+v, %v", p, err)
	}
	if fs.count("AssumeRoleWithWebIdentity") != 1 {
		t.Errorf("AssumeRoleWithWebIdentity calls = %d, want 1 (at the endpoint override)", fs.count("AssumeRoleWithWebIdentity"))
	}
	if fm := fs.formOf("AssumeRoleWithWebIdentity"); fm["RoleArn"] != "arn:aws:iam::111122223333:role/irsa-role" || fm["WebIdentityToken"] == "" {
		t.Errorf("AssumeRoleWithWebIdentity form = %v", fm)
	}
	if !strings.Contains(fs.authOf("GetCallerIdentity"), "Credential="+assumedKeyID+"/") {
		t.Error("GetCallerIdentity must be signed with the web-identity credentials")
	}
	if _, ok := c.Config.HTTPClient.(ownBodiesClient); !ok {
		t.Errorf("default-chain clients use %T, want request bodies copied (OwnBodies)", c.Config.HTTPClient)
	}
}

func TestDefaultChainWithoutCredentials(t *testing.T) {
	awstest.IsolateEnv(t)
	f := newTestFactory(t, "http://127.0.0.1:1", nil)
	c, err := f.Get(context.Background(), Request{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Principal(ctx)
	if err == nil || !strings.Contains(err.Error(), "the pod's default AWS credentials") {
		t.Errorf("err = %v, want an error naming the default credentials", err)
	}
}

func TestPrincipalHungEndpoint(t *testing.T) {
	awstest.IsolateEnv(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	f := newTestFactory(t, srv.URL, nil)
	c, _ := f.Get(context.Background(), Request{Region: "us-east-1", Secret: secretVersion("ns", "s", "u", "1", testKeyID, testSecretKey)})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := c.Principal(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestLoopbackOnlyHTTPClient(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	c := LoopbackOnlyHTTPClient()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if resp, err := c.Do(req); err != nil {
		t.Fatalf("loopback request: %v", err)
	} else {
		resp.Body.Close()
	}
	req, _ = http.NewRequest(http.MethodGet, "https://sts.amazonaws.com/", nil)
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("non-loopback request: err = %v, want refused", err)
	}
	if hits.Load() != 1 {
		t.Errorf("hits = %d", hits.Load())
	}
}

func TestEndpointFromEnv(t *testing.T) {
	t.Setenv(EndpointEnv, " http://127.0.0.1:5000 ")
	if EndpointFromEnv() != "http://127.0.0.1:5000" {
		t.Errorf("EndpointFromEnv = %q", EndpointFromEnv())
	}
}

// TestGetHonoursItsContext: a caller whose context has ended gets its context's error instead of
// waiting for (or starting) a shared build.
func TestGetHonoursItsContext(t *testing.T) {
	awstest.IsolateEnv(t)
	f := newTestFactory(t, "http://127.0.0.1:1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v := secretVersion("ns", "creds", "uid-ctx", "1", testKeyID, testSecretKey)
	if _, err := f.Get(ctx, Request{Region: "us-east-1", Secret: v}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with an ended context: %v, want context.Canceled", err)
	}
	if _, err := f.Get(context.Background(), Request{Region: "us-east-1", Secret: v}); err != nil {
		t.Fatalf("Get after another caller gave up: %v", err)
	}
}
