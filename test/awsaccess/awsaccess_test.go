// Package awsaccess tests the AWS access layer (pkg/awsclients, pkg/ec2/ec2api,
// pkg/policycheck/collect) against moto server from test/harness/awsemu.
// Without EC2GUARD_MOTO_SERVER the tests skip (fail under
// EC2GUARD_INTEGRATION=1): run `make test-env` or `source <(hack/moto.sh)`.
package awsaccess

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/internal/awstest"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	ec2model "github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
)

const region = "us-east-1"

// env is one test's moto server, factory and captured logs. Every secret
// key seeded through it is remembered, and at the end of the test the logs
// and every error string the test recorded are scanned for them.
type env struct {
	t       *testing.T
	srv     *awsemu.Server
	seed    *awsemu.Seeder
	logs    *syncBuffer
	log     *slog.Logger
	factory *awsclients.Factory

	mu      sync.Mutex
	secrets []string
	texts   []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func setup(t *testing.T) *env {
	t.Helper()
	awstest.IsolateEnv(t)
	srv := awsemu.Start(t)
	e := &env{t: t, srv: srv, seed: srv.Seeder(), logs: &syncBuffer{}}
	e.log = slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.factory = e.newFactory()
	t.Cleanup(e.scanForSecrets)
	return e
}

func (e *env) newFactory() *awsclients.Factory {
	f, err := awsclients.NewFactory(awsclients.Options{
		Endpoint:   e.srv.Endpoint(),
		HTTPClient: awsclients.LoopbackOnlyHTTPClient(),
		Retry: ec2api.RetryOptions{MaxAttempts: 3, Backoff: retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) {
			return 10 * time.Millisecond, nil
		})},
		Logger: e.log,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// user seeds an IAM user with an access key and remembers its secret key.
func (e *env) user(name string) awsemu.User {
	e.t.Helper()
	u, err := e.seed.CreateUser(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.remember(u.SecretAccessKey)
	return u
}

func (e *env) remember(secret string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, secret)
}

// record keeps a string (an error message, a result) to scan at the end.
func (e *env) record(v any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch x := v.(type) {
	case nil:
	case error:
		e.texts = append(e.texts, x.Error(), fmt.Sprintf("%+v", x))
	default:
		b, _ := json.Marshal(x)
		e.texts = append(e.texts, fmt.Sprintf("%+v", x), string(b))
	}
}

func (e *env) scanForSecrets() {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := e.logs.String()
	if logs == "" {
		e.t.Error("no logs were captured: the secret scan would prove nothing")
	}
	for _, s := range e.secrets {
		if strings.Contains(logs, s) {
			e.t.Errorf("a seeded secret access key appears in the logs")
		}
		for _, txt := range e.texts {
			if strings.Contains(txt, s) {
				e.t.Errorf("a seeded secret access key appears in an error or result: %.80s...", txt)
			}
		}
	}
}

// secretVersion is a Gloo AWS secret holding u's key, parsed by pkg/ec2.
func secretVersion(t *testing.T, ns, name, uid, rv, keyID, secretKey string) *awsclients.SecretVersion {
	t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), ResourceVersion: rv},
		Data: map[string][]byte{
			ec2model.SecretKeyAccessKeyID:     []byte(keyID),
			ec2model.SecretKeySecretAccessKey: []byte(secretKey),
		},
	}
	creds, findings := ec2model.ParseSecret(s)
	if findings.HasErrors() {
		t.Fatalf("seeded secret does not parse: %v", findings)
	}
	return awsclients.NewSecretVersion(s, creds)
}

func fixedPolicy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixed-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("not JSON: %v: %q", err, a)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const groupPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"GroupDescribeTags","Effect":"Allow","Action":"ec2:DescribeTags","Resource":"*"}]}`

// TestUserWithFixedPolicy: a user's keys in a secret resolve to the user's
// ARN; its inline fixed policy and its group's attached policy are collected,
// per principal and from the account snapshot.
func TestUserWithFixedPolicy(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	u := e.user("gloo")
	must(t, e.seed.PutUserPolicy(ctx, "gloo", "fixed", fixedPolicy(t)))
	must(t, func() error { _, err := e.seed.CreateGroup(ctx, "devs"); return err }())
	gp, err := e.seed.CreateManagedPolicy(ctx, "devs-describe-tags", groupPolicy)
	must(t, err)
	must(t, e.seed.AttachGroupPolicy(ctx, "devs", gp))
	must(t, e.seed.AddUserToGroup(ctx, "devs", "gloo"))

	c, err := e.factory.Get(ctx, awsclients.Request{Region: region, Secret: secretVersion(t, "team-a", "aws-creds", "uid-1", "1", u.AccessKeyID, u.SecretAccessKey)})
	must(t, err)
	p, err := c.Principal(ctx)
	e.record(err)
	must(t, err)
	if p.ARN != u.ARN || p.Type != awsclients.PrincipalUser || p.Account != awsemu.AccountID {
		t.Fatalf("principal = %+v, want %s", p, u.ARN)
	}

	col, err := collect.New(collect.Options{Logger: e.log})
	must(t, err)
	pol, err := col.Collect(ctx, collect.Request{PrincipalARN: p.ARN, CredentialKey: c.Key.String(), Upstream: c.IAM, CredentialSource: c.Key.CredentialSource()})
	e.record(err)
	must(t, err)
	e.record(pol)
	checkUserPolicies(t, pol, fixedPolicy(t), gp)

	snap := collect.NewSnapshot(c.IAM, collect.SnapshotOptions{Logger: e.log})
	spol, err := snap.Fetch(ctx, p.ARN)
	e.record(err)
	must(t, err)
	checkUserPolicies(t, spol, fixedPolicy(t), gp)
	if spol.Strategy != collect.StrategyAccountSnapshot {
		t.Errorf("snapshot strategy = %q", spol.Strategy)
	}

	dry := collect.DryRunDescribeInstances(ctx, c.EC2)
	e.record(dry)
	if dry.Decision != collect.Allowed {
		t.Errorf("dry run = %+v, want allowed (moto without auth allows everything)", dry)
	}
	sim := collect.SimulateDescribeInstances(ctx, c.IAM, p.ARN, region)
	e.record(sim)
	t.Logf("aws-simulator against moto: %s", sim.Reason)
	if sim.Decision != collect.Unknown || !strings.Contains(sim.Reason, "SimulatePrincipalPolicy") {
		t.Errorf("simulator = %+v, want unknown (moto does not implement SimulatePrincipalPolicy)", sim)
	}
}

func checkUserPolicies(t *testing.T, pol *collect.Policies, fixed, groupPolicyARN string) {
	t.Helper()
	if pol.PrincipalType != "user" || fmt.Sprint(pol.Groups) != "[devs]" || len(pol.Identity) != 2 {
		t.Fatalf("policies = %+v, want user gloo in devs with 2 identity documents", pol)
	}
	inline, managed := pol.Identity[0], pol.Identity[1]
	if inline.Origin != (collect.Origin{Type: collect.Inline, AttachedTo: "user/gloo", Name: "fixed"}) || !sameJSON(t, inline.JSON, fixed) {
		t.Errorf("inline document = %+v, want the fixed policy", inline)
	}
	if managed.Origin.Type != collect.Managed || managed.Origin.AttachedTo != "group/devs" || managed.Origin.PolicyARN != groupPolicyARN ||
		managed.Origin.VersionID != "v1" || !sameJSON(t, managed.JSON, groupPolicy) {
		t.Errorf("group document = %+v", managed)
	}
	if pol.PermissionsBoundary != nil || pol.TrustPolicy != nil {
		t.Errorf("boundary %v trust %v, want none", pol.PermissionsBoundary, pol.TrustPolicy)
	}
}

const roleInline = `{"Version":"2012-10-17","Statement":[{"Sid":"RoleDescribe","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`
const boundaryDoc = `{"Version":"2012-10-17","Statement":[{"Sid":"Bound","Effect":"Allow","Action":"ec2:*","Resource":"*"}]}`

func trustFor(principalARN string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":%q},"Action":"sts:AssumeRole"}]}`, principalARN)
}

// TestRoleThroughRoleArn: roleArn is assumed with a stable session name; the
// principal is the role, whose trust, inline, managed and boundary policies
// are collected.
func TestRoleThroughRoleArn(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	u := e.user("gloo")
	role, err := e.seed.CreateRole(ctx, "reader", trustFor(u.ARN))
	must(t, err)
	must(t, e.seed.PutRolePolicy(ctx, "reader", "describe", roleInline))
	fixedARN, err := e.seed.CreateManagedPolicy(ctx, "fixed", fixedPolicy(t))
	must(t, err)
	must(t, e.seed.AttachRolePolicy(ctx, "reader", fixedARN))
	bARN, err := e.seed.CreateManagedPolicy(ctx, "boundary", boundaryDoc)
	must(t, err)
	must(t, e.seed.SetRolePermissionsBoundary(ctx, "reader", bARN))

	c, err := e.factory.Get(ctx, awsclients.Request{Region: region, RoleARN: role.ARN,
		Secret: secretVersion(t, "team-a", "aws-creds", "uid-1", "7", u.AccessKeyID, u.SecretAccessKey)})
	must(t, err)
	p, err := c.Principal(ctx)
	e.record(err)
	must(t, err)
	if p.ARN != role.ARN || p.Type != awsclients.PrincipalRole || p.SessionName != "ec2guard-team-a-aws-creds" {
		t.Fatalf("principal = %+v, want role %s with session ec2guard-team-a-aws-creds", p, role.ARN)
	}
	if !strings.HasPrefix(p.CallerARN, "arn:aws:sts::"+awsemu.AccountID+":assumed-role/reader/") {
		t.Errorf("caller ARN = %s", p.CallerARN)
	}

	col, err := collect.New(collect.Options{Logger: e.log})
	must(t, err)
	pol, err := col.Collect(ctx, collect.Request{PrincipalARN: p.ARN, CredentialKey: c.Key.String(), Upstream: c.IAM, CredentialSource: c.Key.CredentialSource()})
	e.record(err)
	must(t, err)
	e.record(pol)
	if pol.Principal != role.ARN || pol.PrincipalType != "role" || len(pol.Identity) != 2 {
		t.Fatalf("policies = %+v", pol)
	}
	if !sameJSON(t, pol.Identity[0].JSON, roleInline) || !sameJSON(t, pol.Identity[1].JSON, fixedPolicy(t)) || pol.Identity[1].Origin.PolicyARN != fixedARN {
		t.Errorf("identity documents = %+v", pol.Identity)
	}
	if pol.TrustPolicy == nil || !sameJSON(t, pol.TrustPolicy.JSON, trustFor(u.ARN)) {
		t.Errorf("trust policy = %+v", pol.TrustPolicy)
	}
	if pol.PermissionsBoundary == nil || pol.PermissionsBoundary.Origin.PolicyARN != bARN || !sameJSON(t, pol.PermissionsBoundary.JSON, boundaryDoc) {
		t.Errorf("boundary = %+v", pol.PermissionsBoundary)
	}
}

// TestDeletedKeyAndSecretUpdate runs with moto's IAM enforcement on (the
// only mode in which moto rejects a deleted key): a deleted key gives the
// clear error; a secret update with a new key works on the next call; the
// Upstream's credentials may not read IAM, so the auditor (the pod's default
// chain, here AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of an admin user)
// collects instead; the dry run tells allowed from denied.
func TestDeletedKeyAndSecretUpdate(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	admin := e.user("admin")
	must(t, e.seed.PutUserPolicy(ctx, "admin", "all", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`))
	u := e.user("gloo")
	must(t, e.seed.PutUserPolicy(ctx, "gloo", "fixed", fixedPolicy(t)))
	none := e.user("nobody")
	must(t, e.srv.EnableAuth(ctx))
	adminSeed := e.srv.SeederWith(admin.Credentials())

	// The pod's own identity: the admin's keys in the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", admin.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", admin.SecretAccessKey)
	auditor, err := e.factory.Get(ctx, awsclients.Request{Region: region})
	must(t, err)
	ap, err := auditor.Principal(ctx)
	e.record(err)
	must(t, err)
	if ap.ARN != admin.ARN {
		t.Fatalf("default-chain principal = %s, want %s", ap.ARN, admin.ARN)
	}

	v1 := secretVersion(t, "team-a", "aws-creds", "uid-1", "1", u.AccessKeyID, u.SecretAccessKey)
	c1, err := e.factory.Get(ctx, awsclients.Request{Region: region, Secret: v1})
	must(t, err)
	p, err := c1.Principal(ctx)
	e.record(err)
	must(t, err)
	if p.ARN != u.ARN {
		t.Fatalf("principal = %s, want %s", p.ARN, u.ARN)
	}

	// The user may not read IAM: fall back to the auditor, and say so.
	col, err := collect.New(collect.Options{Logger: e.log, Auditor: collect.NewPerPrincipal(auditor.IAM, "the auditor identity")})
	must(t, err)
	pol, err := col.Collect(ctx, collect.Request{PrincipalARN: p.ARN, CredentialKey: c1.Key.String(), Upstream: c1.IAM, CredentialSource: c1.Key.CredentialSource()})
	e.record(err)
	must(t, err)
	e.record(pol)
	if pol.ReadWith != collect.ReadWithAuditor || len(pol.Notes) == 0 || !strings.Contains(pol.Notes[0], "secret team-a/aws-creds may not read IAM (iam:GetUser: AccessDenied)") {
		t.Errorf("ReadWith %q notes %q, want the auditor fallback explained", pol.ReadWith, pol.Notes)
	}
	if len(pol.Identity) != 1 || !sameJSON(t, pol.Identity[0].JSON, fixedPolicy(t)) {
		t.Errorf("identity = %+v", pol.Identity)
	}

	// Dry run: allowed for the fixed policy, denied for a user without policies.
	if r := collect.DryRunDescribeInstances(ctx, c1.EC2); r.Decision != collect.Allowed {
		t.Errorf("dry run with the fixed policy = %+v", r)
	}
	cn, err := e.factory.Get(ctx, awsclients.Request{Region: region, Secret: secretVersion(t, "ns", "none", "uid-n", "1", none.AccessKeyID, none.SecretAccessKey)})
	must(t, err)
	if r := collect.DryRunDescribeInstances(ctx, cn.EC2); r.Decision != collect.Denied {
		e.record(r)
		t.Errorf("dry run without policies = %+v, want denied", r)
	}

	// Rotate the key: delete the old one, create a new one.
	must(t, adminSeed.DeleteAccessKey(ctx, "gloo", u.AccessKeyID))
	newID, newSecret, err := adminSeed.CreateAccessKey(ctx, "gloo")
	must(t, err)
	e.remember(newSecret)

	// Credentials that still hold the deleted key (a fresh factory: nothing cached).
	stale, err := e.newFactory().Get(ctx, awsclients.Request{Region: region, Secret: v1})
	must(t, err)
	_, err = stale.Principal(ctx)
	e.record(err)
	var ic *awsclients.InvalidCredentialsError
	if !errors.As(err, &ic) {
		t.Fatalf("deleted key: err = %v, want *InvalidCredentialsError", err)
	}
	wantMsg := "the access key in secret team-a/aws-creds is not valid (key " + ec2model.MaskAccessKeyID(u.AccessKeyID) + ", AWS error InvalidClientTokenId)"
	if err.Error() != wantMsg {
		t.Errorf("deleted key message = %q, want %q", err.Error(), wantMsg)
	}
	if strings.Contains(err.Error(), u.AccessKeyID) {
		t.Error("the message shows the full access key id")
	}
	dr := collect.DryRunDescribeInstances(ctx, stale.EC2)
	e.record(dr)
	if dr.Decision != collect.Unknown || !strings.Contains(dr.Reason, "AuthFailure") {
		t.Errorf("dry run with the deleted key = %+v, want unknown (AuthFailure)", dr)
	}

	// The secret is updated (new resourceVersion, new key): the next call uses it.
	v2 := secretVersion(t, "team-a", "aws-creds", "uid-1", "2", newID, newSecret)
	c2, err := e.factory.Get(ctx, awsclients.Request{Region: region, Secret: v2})
	must(t, err)
	if c2 == c1 {
		t.Fatal("the updated secret got the old clients")
	}
	p2, err := c2.Principal(ctx)
	e.record(err)
	if err != nil || p2.ARN != u.ARN {
		t.Fatalf("after the update: principal %+v, err %v", p2, err)
	}
	if c2.MaskedAccessKeyID() != ec2model.MaskAccessKeyID(newID) {
		t.Errorf("clients use key %s, want %s", c2.MaskedAccessKeyID(), ec2model.MaskAccessKeyID(newID))
	}
	if r := collect.DryRunDescribeInstances(ctx, c2.EC2); r.Decision != collect.Allowed {
		t.Errorf("dry run with the new key = %+v", r)
	}
}

// TestDefaultChainWebIdentity: IRSA-style web identity through the SDK
// default chain, its STS call sent to the endpoint override.
func TestDefaultChainWebIdentity(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	role, err := e.seed.CreateRole(ctx, "irsa", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`)
	must(t, err)
	token := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZWMyZ3VhcmQ6ZWMyZ3VhcmQifQ.c2ln"), 0o600))
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", token)
	t.Setenv("AWS_ROLE_ARN", role.ARN)
	t.Setenv("AWS_ROLE_SESSION_NAME", "ec2guard-pod")
	c, err := e.factory.Get(ctx, awsclients.Request{Region: region})
	must(t, err)
	p, err := c.Principal(ctx)
	e.record(err)
	must(t, err)
	if p.ARN != role.ARN || p.SessionName != "ec2guard-pod" {
		t.Errorf("principal = %+v, want %s with session ec2guard-pod", p, role.ARN)
	}
}

// TestListingAcrossPages seeds more than 1,000 running instances (one
// reservation each: moto's MaxResults counts reservations), some stopped and
// some in another region, and lists exactly the running ones of the region
// across several pages, tags intact, with and without a tag filter.
func TestListingAcrossPages(t *testing.T) {
	e := setup(t)
	ctx := t.Context()
	u := e.user("lister")
	const n = 1030
	const otherRegion = "eu-west-1"
	client := e.seed.EC2(region)

	type seeded struct {
		id   string
		tags map[string]string
	}
	all := make([]seeded, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			tags := map[string]string{"idx": fmt.Sprint(i), "app": []string{"web", "api", "db"}[i%3]}
			if i%10 == 0 {
				tags["Team"] = "Blue Team*?" // literal * and ? and upper case survive
			}
			out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
				ImageId: aws.String(awsemu.ImageID), InstanceType: ec2types.InstanceTypeT3Micro,
				MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: ec2Tags(tags)}},
			})
			if err != nil {
				errs <- fmt.Errorf("seed instance %d: %w", i, err)
				return
			}
			all[i] = seeded{id: aws.ToString(out.Instances[0].InstanceId), tags: tags}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var stopped []string
	for i := 0; i < n; i += 50 {
		stopped = append(stopped, all[i].id)
	}
	must(t, e.seed.StopInstances(ctx, region, stopped...))
	_, err := e.seed.RunInstances(ctx, otherRegion, 3, map[string]string{"app": "web"})
	must(t, err)

	want := map[string]map[string]string{}
	for _, s := range all {
		if !slices.Contains(stopped, s.id) {
			want[s.id] = s.tags
		}
	}

	c, err := e.factory.Get(ctx, awsclients.Request{Region: region, Secret: secretVersion(t, "ns", "lister", "uid-l", "1", u.AccessKeyID, u.SecretAccessKey)})
	must(t, err)
	got, pages, err := ec2api.ListRunningInstances(ctx, c.EC2, nil)
	e.record(err)
	must(t, err)
	if pages < 2 {
		t.Errorf("pages = %d, want at least 2 for %d reservations", pages, len(want))
	}
	checkListing(t, got, want)

	// Server-side filters as EC2 documents them: `*` and `?` in a value escaped to match literally.
	filters := []ec2types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
		{Name: aws.String("tag:app"), Values: []string{"web"}},
		{Name: aws.String("tag:Team"), Values: []string{`Blue Team\*\?`}},
	}
	wantWeb := map[string]map[string]string{}
	for id, tags := range want {
		if tags["app"] == "web" && tags["Team"] == "Blue Team*?" {
			wantWeb[id] = tags
		}
	}
	gotWeb, webPages, err := ec2api.ListRunningInstances(ctx, c.EC2, filters)
	e.record(err)
	must(t, err)
	if webPages != 1 {
		t.Errorf("filtered listing took %d pages, want 1", webPages)
	}
	checkListing(t, gotWeb, wantWeb)
}

func checkListing(t *testing.T, got []ec2api.Instance, want map[string]map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("listed %d instances, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, inst := range got {
		if seen[inst.ID] {
			t.Errorf("instance %s listed twice", inst.ID)
		}
		seen[inst.ID] = true
		tags, ok := want[inst.ID]
		if !ok {
			t.Errorf("instance %s (state %s, tags %v) is not one of the running instances of the region", inst.ID, inst.State, inst.Tags)
			continue
		}
		if fmt.Sprint(inst.Tags) != fmt.Sprint(tags) {
			t.Errorf("instance %s tags = %v, want %v", inst.ID, inst.Tags, tags)
		}
		if inst.State != "running" || inst.PrivateIPv4 == "" || !strings.HasPrefix(inst.AvailabilityZone, region) {
			t.Errorf("instance %s = %+v", inst.ID, inst)
		}
	}
}

func ec2Tags(tags map[string]string) []ec2types.Tag {
	out := make([]ec2types.Tag, 0, len(tags))
	for k, v := range tags {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}
