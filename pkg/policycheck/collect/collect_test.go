package collect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
)

const (
	gloo   = "arn:aws:iam::" + acct + ":user/team/gloo"
	reader = "arn:aws:iam::" + acct + ":role/reader" // as mapped from an assumed-role ARN: no path
)

// summary renders the documents as "origin => Sid" lines, to compare results.
func summary(t *testing.T, p *Policies) []string {
	t.Helper()
	var out []string
	for _, d := range p.All() {
		var doc struct {
			Statement []struct{ Sid string }
		}
		if err := json.Unmarshal([]byte(d.JSON), &doc); err != nil {
			t.Fatalf("%s: document is not JSON (%v): %q", d.Origin, err, d.JSON)
		}
		sid := "-"
		if len(doc.Statement) > 0 && doc.Statement[0].Sid != "" {
			sid = doc.Statement[0].Sid
		}
		out = append(out, d.Origin.String()+" => "+sid)
	}
	return out
}

var wantUser = []string{
	"inline policy a of user/gloo => A",
	"inline policy b of user/gloo => B",
	"managed policy arn:aws:iam::111122223333:policy/describe (v2) attached to user/gloo => Current",
	"inline policy g of group/devs => G",
	"managed policy arn:aws:iam::111122223333:policy/group-managed (v1) attached to group/devs => GM",
	"managed policy arn:aws:iam::111122223333:policy/describe (v2) attached to group/devs => Current",
	"permissions boundary arn:aws:iam::111122223333:policy/boundary (v1) of user/gloo => Bound",
}

var wantRole = []string{
	"inline policy r of role/reader => R",
	"managed policy arn:aws:iam::111122223333:policy/describe (v2) attached to role/reader => Current",
	"trust policy of role/reader => -",
}

func TestPerPrincipalUser(t *testing.T) {
	f := seededIAM()
	p, err := NewPerPrincipal(f, "secret ns/s").Fetch(context.Background(), gloo)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := summary(t, p); strings.Join(got, "\n") != strings.Join(wantUser, "\n") {
		t.Errorf("documents:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantUser, "\n"))
	}
	if p.Principal != gloo || p.PrincipalType != "user" || p.Account != acct || fmt.Sprint(p.Groups) != "[devs]" || p.Strategy != StrategyPerPrincipal {
		t.Errorf("policies = %+v", p)
	}
	if p.Identity[0].JSON != docUserInlineA {
		t.Errorf("inline document not URL-decoded exactly: %q", p.Identity[0].JSON)
	}
	if f.count("GetPolicyVersion") != 3 {
		t.Errorf("GetPolicyVersion calls = %d, want 3 (describe read once for user and group)", f.count("GetPolicyVersion"))
	}
	if f.count("ListUserPolicies") != 2 {
		t.Errorf("ListUserPolicies calls = %d, want 2 pages", f.count("ListUserPolicies"))
	}
}

func TestPerPrincipalRole(t *testing.T) {
	p, err := NewPerPrincipal(seededIAM(), "secret ns/s").Fetch(context.Background(), reader)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if got := summary(t, p); strings.Join(got, "\n") != strings.Join(wantRole, "\n") {
		t.Errorf("documents:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantRole, "\n"))
	}
	if p.Principal != "arn:aws:iam::"+acct+":role/svc/reader" {
		t.Errorf("Principal = %s, want the role's ARN with its path from GetRole", p.Principal)
	}
	if p.TrustPolicy == nil || p.TrustPolicy.JSON != docTrust {
		t.Errorf("trust policy = %+v", p.TrustPolicy)
	}
}

func TestPerPrincipalErrors(t *testing.T) {
	f := seededIAM()
	f.deny["ListAttachedUserPolicies"] = true
	_, err := NewPerPrincipal(f, "secret ns/s").Fetch(context.Background(), gloo)
	var ad *AccessDeniedError
	if !errors.As(err, &ad) || ad.API != "iam:ListAttachedUserPolicies" || err.Error() != "secret ns/s may not read IAM (iam:ListAttachedUserPolicies: AccessDenied)" {
		t.Errorf("err = %v, want AccessDeniedError naming the call", err)
	}
	_, err = NewPerPrincipal(seededIAM(), "x").Fetch(context.Background(), "arn:aws:iam::"+acct+":user/nobody")
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("err = %v, want NotFoundError", err)
	}
	for _, bad := range []string{"arn:aws:sts::1:assumed-role/r/s", "arn:aws:iam::1:group/g", "nope"} {
		if _, err := NewPerPrincipal(seededIAM(), "x").Fetch(context.Background(), bad); err == nil {
			t.Errorf("Fetch(%q): want an error", bad)
		}
	}
}

func TestSnapshotMatchesPerPrincipal(t *testing.T) {
	f := seededIAM()
	s := NewSnapshot(f, SnapshotOptions{})
	ctx := context.Background()
	for _, tc := range []struct {
		arn  string
		want []string
	}{{gloo, wantUser}, {reader, wantRole}} {
		p, err := s.Fetch(ctx, tc.arn)
		if err != nil {
			t.Fatalf("Fetch(%s): %v", tc.arn, err)
		}
		if got := summary(t, p); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s from the snapshot:\n%s\nwant:\n%s", tc.arn, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
		if p.Strategy != StrategyAccountSnapshot || len(p.Notes) == 0 {
			t.Errorf("strategy %q notes %v", p.Strategy, p.Notes)
		}
	}
	if f.count("GetAccountAuthorizationDetails") != 4 || s.Pages() != 4 {
		t.Errorf("snapshot calls = %d, pages = %d; want one snapshot of 4 pages for both lookups", f.count("GetAccountAuthorizationDetails"), s.Pages())
	}
	var nf *NotFoundError
	if _, err := s.Fetch(ctx, "arn:aws:iam::999999999999:user/gloo"); !errors.As(err, &nf) || !strings.Contains(err.Error(), "another account") {
		t.Errorf("other account: err = %v", err)
	}
	if _, err := s.Fetch(ctx, "arn:aws:iam::"+acct+":role/none"); !errors.As(err, &nf) {
		t.Errorf("unknown role: err = %v", err)
	}
}

func TestSnapshotRunRefreshesUntilCancelled(t *testing.T) {
	f := seededIAM()
	s := NewSnapshot(f, SnapshotOptions{Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	for f.count("GetAccountAuthorizationDetails") < 8 { // two full refreshes
		select {
		case <-done:
			t.Fatal("Run returned before it was cancelled")
		case <-time.After(time.Millisecond):
		}
	}
	f.mu.Lock()
	f.users["new"] = &fakeUser{inline: map[string]string{"n": docRoleInline}}
	f.mu.Unlock()
	n := f.count("GetAccountAuthorizationDetails")
	for f.count("GetAccountAuthorizationDetails") < n+8 {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Fetch(context.Background(), "arn:aws:iam::"+acct+":user/new"); err != nil {
		t.Errorf("a user created before a refresh is not found: %v", err)
	}
	cancel()
	<-done
}

func TestSnapshotAccessDenied(t *testing.T) {
	f := seededIAM()
	f.deny["GetAccountAuthorizationDetails"] = true
	_, err := NewSnapshot(f, SnapshotOptions{}).Fetch(context.Background(), gloo)
	var ad *AccessDeniedError
	if !errors.As(err, &ad) || ad.Reader != "the auditor identity" {
		t.Errorf("err = %v, want AccessDeniedError of the auditor identity", err)
	}
}

func TestCollectorCachesAndKeysBySecretVersion(t *testing.T) {
	f := seededIAM()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := Request{PrincipalARN: gloo, CredentialKey: "secret:ns/s@uid/1", Upstream: f, CredentialSource: "secret ns/s"}
	p1, err := c.Collect(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	calls := f.total()
	p1.Identity[0].JSON = "mutated by the caller"
	p2, err := c.Collect(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if f.total() != calls {
		t.Error("a cached result must cost no IAM call")
	}
	if p2.Identity[0].JSON != docUserInlineA || p2.ReadWith != ReadWithUpstream {
		t.Errorf("cached result changed by a caller, or ReadWith %q", p2.ReadWith)
	}
	req.CredentialKey = "secret:ns/s@uid/2" // the secret changed
	if _, err := c.Collect(ctx, req); err != nil {
		t.Fatal(err)
	}
	if f.total() != 2*calls {
		t.Errorf("calls = %d, want a new fetch (%d) for a new secret version", f.total(), 2*calls)
	}
	c.Forget("secret:ns/s@uid/2")
	if _, err := c.Collect(ctx, req); err != nil {
		t.Fatal(err)
	}
	if f.total() != 3*calls {
		t.Errorf("calls = %d after Forget, want another fetch", f.total())
	}
}

func TestCollectorTTL(t *testing.T) {
	f := seededIAM()
	c, _ := New(Options{TTL: time.Millisecond})
	req := Request{PrincipalARN: reader, CredentialKey: "k", Upstream: f}
	if _, err := c.Collect(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	n := f.count("GetRole")
	time.Sleep(20 * time.Millisecond)
	if _, err := c.Collect(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if f.count("GetRole") != n+1 {
		t.Errorf("GetRole calls = %d, want a refetch after the TTL", f.count("GetRole"))
	}
}

func TestCollectorSharesConcurrentFetches(t *testing.T) {
	f := seededIAM()
	f.gate = make(chan struct{})
	c, _ := New(Options{})
	req := Request{PrincipalARN: gloo, CredentialKey: "k", Upstream: f}
	const n = 10
	var joined sync.WaitGroup
	joined.Add(n)
	c.joined = joined.Done
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Collect(context.Background(), req)
			errs <- err
		})
	}
	// Every caller has joined the one fetch, which the gate holds: only then may AWS answer.
	joined.Wait()
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if f.count("GetUser") != 1 {
		t.Errorf("GetUser calls = %d for %d concurrent requests, want 1", f.count("GetUser"), n)
	}
}

func TestCollectorCallerDeadlineDoesNotCancelSharedFetch(t *testing.T) {
	f := seededIAM()
	f.gate = make(chan struct{})
	c, _ := New(Options{})
	req := Request{PrincipalARN: gloo, CredentialKey: "k", Upstream: f}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Collect(ctx, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	close(f.gate) // AWS answers after the caller gave up
	for {
		if _, ok := c.cache.Get(cacheKey(req)); ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	n := f.total()
	if _, err := c.Collect(context.Background(), req); err != nil || f.total() != n {
		t.Errorf("next call: err %v, calls %d -> %d; want the finished fetch cached", err, n, f.total())
	}
}

func TestCollectorFallsBackToAuditor(t *testing.T) {
	upstream := seededIAM()
	upstream.deny["GetUser"] = true
	auditorIAM := seededIAM()
	c, _ := New(Options{Auditor: NewPerPrincipal(auditorIAM, "the auditor identity")})
	p, err := c.Collect(context.Background(), Request{PrincipalARN: gloo, CredentialKey: "k", Upstream: upstream, CredentialSource: "secret team-a/aws-creds"})
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if p.ReadWith != ReadWithAuditor || len(p.Notes) == 0 ||
		p.Notes[0] != "secret team-a/aws-creds may not read IAM (iam:GetUser: AccessDenied); collected with the auditor identity instead" {
		t.Errorf("ReadWith %q notes %q", p.ReadWith, p.Notes)
	}
	if len(p.Identity) != 6 {
		t.Errorf("identity documents = %d, want 6", len(p.Identity))
	}

	noAuditor, _ := New(Options{})
	_, err = noAuditor.Collect(context.Background(), Request{PrincipalARN: gloo, CredentialKey: "k", Upstream: upstream, CredentialSource: "secret team-a/aws-creds"})
	var ad *AccessDeniedError
	if !errors.As(err, &ad) {
		t.Errorf("without an auditor: err = %v, want AccessDeniedError", err)
	}
}

func TestCollectorReadWithAuditor(t *testing.T) {
	upstream := seededIAM()
	auditorIAM := seededIAM()
	c, err := New(Options{ReadWith: ReadWithAuditor, Auditor: NewSnapshot(auditorIAM, SnapshotOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Collect(context.Background(), Request{PrincipalARN: reader, CredentialKey: "k", Upstream: upstream})
	if err != nil {
		t.Fatal(err)
	}
	if upstream.total() != 0 || p.ReadWith != ReadWithAuditor || p.Strategy != StrategyAccountSnapshot {
		t.Errorf("upstream calls %d, ReadWith %q, strategy %q", upstream.total(), p.ReadWith, p.Strategy)
	}
	if _, err := New(Options{ReadWith: ReadWithAuditor}); err == nil {
		t.Error("ReadWith auditor without an auditor must be an error")
	}
	if _, err := New(Options{ReadWith: "someone"}); err == nil {
		t.Error("an unknown ReadWith must be an error")
	}
}

func TestDecodeDocument(t *testing.T) {
	for in, want := range map[string]string{
		"%7B%22a%22%3A%22b%2Bc%20d%22%7D": `{"a":"b+c d"}`,
		`{"a":"50%"}`:                     `{"a":"50%"}`,
		" \n{}":                           " \n{}",
	} {
		got, err := decodeDocument(in, "doc")
		if err != nil || got != want {
			t.Errorf("decodeDocument(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := decodeDocument("%zz", "inline policy p of user/u"); err == nil || !strings.Contains(err.Error(), "inline policy p of user/u") {
		t.Errorf("bad encoding: err = %v", err)
	}
}

// simulatorServer answers iam:SimulatePrincipalPolicy with decision and
// records the request form.
func simulatorServer(t *testing.T, status int, body string, form *map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		m := map[string]string{}
		for k := range r.PostForm {
			m[k] = r.PostForm.Get(k)
		}
		*form = m
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func simulateBody(decision, matched string) string {
	return `<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults><member>` +
		`<EvalActionName>ec2:DescribeInstances</EvalActionName><EvalResourceName>*</EvalResourceName><EvalDecision>` + decision + `</EvalDecision>` +
		`<MatchedStatements>` + matched + `</MatchedStatements><MissingContextValues/></member></EvaluationResults></SimulatePrincipalPolicyResult>` +
		`<ResponseMetadata><RequestId>x</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>`
}

func iamClient(srv *httptest.Server) *iam.Client {
	return iam.New(iam.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client(),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDUNITTEST", "unit-secret", "")})
}

func TestSimulateDescribeInstances(t *testing.T) {
	matched := `<member><SourcePolicyId>fixed</SourcePolicyId><SourcePolicyType>user</SourcePolicyType><StartPosition><Line>4</Line><Column>5</Column></StartPosition><EndPosition><Line>9</Line><Column>6</Column></EndPosition></member>`
	for _, tc := range []struct {
		decision string
		want     Decision
		detail   string
	}{
		{"allowed", Allowed, ""},
		{"implicitDeny", Denied, DetailImplicitDeny},
		{"explicitDeny", Denied, DetailExplicitDeny},
	} {
		t.Run(tc.decision, func(t *testing.T) {
			var form map[string]string
			srv := simulatorServer(t, 200, simulateBody(tc.decision, matched), &form)
			res := SimulateDescribeInstances(context.Background(), iamClient(srv), gloo, "eu-west-1")
			if res.Source != SourceAWSSimulator || res.Decision != tc.want || res.Detail != tc.detail || res.Reason == "" {
				t.Errorf("result = %+v", res)
			}
			if fmt.Sprint(res.MatchedStatements) != "[user fixed (line 4, column 5)]" {
				t.Errorf("matched = %v", res.MatchedStatements)
			}
			want := map[string]string{
				"Action":                                            "SimulatePrincipalPolicy",
				"PolicySourceArn":                                   gloo,
				"ActionNames.member.1":                              "ec2:DescribeInstances",
				"ResourceArns.member.1":                             "*",
				"ContextEntries.member.1.ContextKeyName":            "aws:RequestedRegion",
				"ContextEntries.member.1.ContextKeyType":            "string",
				"ContextEntries.member.1.ContextKeyValues.member.1": "eu-west-1",
				"ContextEntries.member.2.ContextKeyName":            "ec2:Region",
				"ContextEntries.member.2.ContextKeyValues.member.1": "eu-west-1",
			}
			for k, v := range want {
				if form[k] != v {
					t.Errorf("request %s = %q, want %q", k, form[k], v)
				}
			}
		})
	}
}

func TestSimulateErrorsAreUnknown(t *testing.T) {
	var form map[string]string
	srv := simulatorServer(t, 403, `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: iam:SimulatePrincipalPolicy</Message></Error><RequestId>x</RequestId></ErrorResponse>`, &form)
	res := SimulateDescribeInstances(context.Background(), iamClient(srv), gloo, "us-east-1")
	if res.Decision != Unknown || !strings.Contains(res.Reason, "denied to the identity that calls it") {
		t.Errorf("result = %+v", res)
	}

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client going away
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hung.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res = SimulateDescribeInstances(ctx, iamClient(hung), gloo, "us-east-1")
	if res.Decision != Unknown || !strings.Contains(res.Reason, "deadline") {
		t.Errorf("hung endpoint: result = %+v", res)
	}
}

// fakeEC2 answers DescribeInstances with a fixed error.
type fakeEC2 struct{ err error }

func (f fakeEC2) DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	return nil, f.err
}

func TestDryRunSource(t *testing.T) {
	for _, tc := range []struct {
		code string
		want Decision
	}{
		{"DryRunOperation", Allowed},
		{"UnauthorizedOperation", Denied},
		{"AuthFailure", Unknown},
		{"RequestLimitExceeded", Unknown},
	} {
		res := DryRunDescribeInstances(context.Background(), fakeEC2{err: &smithy.GenericAPIError{Code: tc.code}})
		if res.Source != SourceDryRun || res.Decision != tc.want || res.Reason == "" {
			t.Errorf("%s: result = %+v, want %s", tc.code, res, tc.want)
		}
	}
	res := DryRunDescribeInstances(context.Background(), fakeEC2{err: &smithy.GenericAPIError{Code: "AuthFailure"}})
	var apiErr smithy.APIError
	if !strings.Contains(res.Reason, "not valid") || !errors.As(res.Err, &apiErr) || apiErr.ErrorCode() != "AuthFailure" {
		t.Errorf("AuthFailure reason = %q, err = %v", res.Reason, res.Err)
	}
	if b, _ := json.Marshal(res); strings.Contains(string(b), "err") {
		t.Errorf("Err must not be serialised: %s", b)
	}
}
