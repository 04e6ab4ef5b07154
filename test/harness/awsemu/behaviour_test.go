package awsemu_test

// These tests pin what moto 5.2.5 does where it matters to ec2guard, above all where it differs
// from AWS, so that nobody takes moto for IAM ground truth and a moto upgrade that changes any of
// it fails here first. test/README.md ("What moto does not do") summarises them.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/ec2guard/ec2guard/test/harness/awsemu"
)

const region = "us-east-1"

// TestMotoBehaviour runs every case against one server, reset in between.
func TestMotoBehaviour(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := awsemu.Start(t)
	cases := []struct {
		name string
		run  func(t *testing.T, srv *awsemu.Server)
	}{
		{"CallerIdentity", testCallerIdentity},
		{"InvalidKeys", testInvalidKeys},
		{"IAMEnforcement", testIAMEnforcement},
		{"DryRun", testDryRun},
		{"AssumeRole", testAssumeRole},
		{"Pagination", testPagination},
		{"TagFilters", testTagFilters},
		{"InstanceLifecycle", testInstanceLifecycle},
		{"AccountAuthorizationDetails", testAccountAuthorizationDetails},
		{"NotImplemented", testNotImplemented},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := srv.Reset(t.Context()); err != nil {
				t.Fatal(err)
			}
			c.run(t, srv)
		})
	}
}

// GetCallerIdentity names the seeded user whose key signed; any other key (auth off) gets moto's
// default identity, in account 123456789012.
func testCallerIdentity(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	u := mustUser(t, srv.Seeder(), "carol")
	id := callerIdentity(ctx, t, srv, u.Credentials())
	if got := aws.ToString(id.Arn); got != "arn:aws:iam::123456789012:user/carol" {
		t.Errorf("seeded user's ARN: %s", got)
	}
	if got := aws.ToString(id.Account); got != awsemu.AccountID {
		t.Errorf("account %s, want %s", got, awsemu.AccountID)
	}
	id = callerIdentity(ctx, t, srv, awsemu.StaticCredentials("AKIAUNKNOWNKEY000000", "x", ""))
	if got := aws.ToString(id.Arn); got != "arn:aws:sts::123456789012:user/moto" {
		t.Errorf("unknown key with auth off: ARN %s, want moto's default identity", got)
	}
}

// With auth on, unknown, deleted and wrong-secret keys fail with AWS's error codes. With auth off
// a deleted key still works and GetCallerIdentity falls back to moto's default identity.
func testInvalidKeys(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	u := mustUser(t, seed, "dave")
	deleted := mustUser(t, seed, "erin")
	if err := seed.DeleteAccessKey(ctx, deleted.Name, deleted.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(callerIdentity(ctx, t, srv, deleted.Credentials()).Arn); got != "arn:aws:sts::123456789012:user/moto" {
		t.Errorf("deleted key with auth off: ARN %s, want moto's default identity", got)
	}
	if _, err := describe(ctx, srv, deleted.Credentials(), false); err != nil {
		t.Errorf("deleted key with auth off: DescribeInstances: %v, want success", err)
	}

	mustEnableAuth(t, srv)
	wrongSecret := awsemu.StaticCredentials(u.AccessKeyID, "wrong-secret", "")
	for _, c := range []struct {
		name             string
		creds            aws.CredentialsProvider
		wantSTS, wantEC2 string
	}{
		{"unknown", awsemu.StaticCredentials("AKIAUNKNOWNKEY000000", "x", ""), "InvalidClientTokenId", "AuthFailure"},
		{"deleted", deleted.Credentials(), "InvalidClientTokenId", "AuthFailure"},
		{"wrong secret", wrongSecret, "SignatureDoesNotMatch", "AuthFailure"},
		{"user key with a session token", awsemu.StaticCredentials(u.AccessKeyID, u.SecretAccessKey, "tok"), "InvalidClientTokenId", "AuthFailure"},
	} {
		_, err := sts.NewFromConfig(srv.Config(region, c.creds)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if got := errCode(err); got != c.wantSTS {
			t.Errorf("%s key: GetCallerIdentity error code %q (%v), want %s", c.name, got, err, c.wantSTS)
		}
		_, err = describe(ctx, srv, c.creds, false)
		if got := errCode(err); got != c.wantEC2 {
			t.Errorf("%s key: DescribeInstances error code %q (%v), want %s", c.name, got, err, c.wantEC2)
		}
	}
}

// moto's IAM check (auth on) compares the action case-sensitively with only `*` as wildcard, and
// the resource with "*" (for EC2 every action is checked against Resource "*", never an ARN), and
// ignores Condition blocks and permissions boundaries. allowedInAWS is what AWS answers.
func testIAMEnforcement(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	stmt := func(effect, action, resource, condRegion string) string {
		cond := ""
		if condRegion != "" {
			cond = fmt.Sprintf(`, "Condition": {"StringEquals": {"aws:RequestedRegion": %q}}`, condRegion)
		}
		return fmt.Sprintf(`{"Effect": %q, "Action": %q, "Resource": %q%s}`, effect, action, resource, cond)
	}
	doc := func(stmts ...string) string {
		return `{"Version": "2012-10-17", "Statement": [` + strings.Join(stmts, ",") + `]}`
	}
	allowAll := stmt("Allow", "ec2:DescribeInstances", "*", "")
	cases := []struct {
		name         string
		policy       string // inline user policy; "" for none
		allowedMoto  bool
		allowedInAWS bool
	}{
		{"allow on *", doc(allowAll), true, true},
		{"no policy", "", false, false},
		{"allow on instance ARNs", doc(stmt("Allow", "ec2:DescribeInstances", "arn:aws:ec2:*:*:instance/*", "")), false, false},
		{"deny on instance ARNs", doc(allowAll, stmt("Deny", "ec2:DescribeInstances", "arn:aws:ec2:*:*:instance/*", "")), true, true},
		{"deny ec2:* on *", doc(allowAll, stmt("Deny", "ec2:*", "*", "")), false, false},
		{"allow with met condition", doc(stmt("Allow", "ec2:DescribeInstances", "*", region)), true, true},
		{"allow with unmet condition", doc(stmt("Allow", "ec2:DescribeInstances", "*", "eu-west-1")), true, false},
		{"deny with unmet condition", doc(allowAll, stmt("Deny", "ec2:*", "*", "eu-west-1")), false, true},
		{"lower-case action", doc(stmt("Allow", "ec2:describeinstances", "*", "")), false, true},
		{"? wildcard in action", doc(stmt("Allow", "ec2:DescribeInstance?", "*", "")), false, true},
	}
	users := make([]awsemu.User, len(cases))
	for i, c := range cases {
		users[i] = mustUser(t, seed, fmt.Sprintf("iam-case-%d", i))
		if c.policy != "" {
			if err := seed.PutUserPolicy(ctx, users[i].Name, "p", c.policy); err != nil {
				t.Fatal(err)
			}
		}
	}
	grouped := mustUser(t, seed, "grouped")
	mustGroup(t, seed, "readers")
	mustOK(t, seed.AddUserToGroup(ctx, "readers", grouped.Name))
	mustOK(t, seed.PutGroupPolicy(ctx, "readers", "gp", doc(allowAll)))
	managed := mustUser(t, seed, "managed")
	arn, err := seed.CreateManagedPolicy(ctx, "describe", doc(allowAll))
	mustOK(t, err)
	mustOK(t, seed.AttachUserPolicy(ctx, managed.Name, arn))

	mustEnableAuth(t, srv)
	for i, c := range cases {
		_, err := describe(ctx, srv, users[i].Credentials(), false)
		if allowed := err == nil; allowed != c.allowedMoto {
			t.Errorf("%s: allowed=%v (%v), want %v (AWS: %v)", c.name, allowed, err, c.allowedMoto, c.allowedInAWS)
		}
		if err != nil && errCode(err) != "AccessDenied" {
			t.Errorf("%s: error code %q, want AccessDenied (AWS says UnauthorizedOperation)", c.name, errCode(err))
		}
	}
	for _, u := range []awsemu.User{grouped, managed} {
		if _, err := describe(ctx, srv, u.Credentials(), false); err != nil {
			t.Errorf("%s: DescribeInstances: %v, want allowed by group/managed policy", u.Name, err)
		}
	}
}

// DryRun is checked after IAM: allowed gives DryRunOperation, denied gives AccessDenied (AWS:
// UnauthorizedOperation, which is what ec2guard's dry-run source looks for).
func testDryRun(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	allowed := mustUser(t, seed, "dry-allowed")
	mustOK(t, seed.PutUserPolicy(ctx, allowed.Name, "p", describeOnly))
	denied := mustUser(t, seed, "dry-denied")

	_, err := describe(ctx, srv, nil, true)
	if got := errCode(err); got != "DryRunOperation" {
		t.Errorf("auth off: DryRun error code %q (%v), want DryRunOperation", got, err)
	}
	mustEnableAuth(t, srv)
	_, err = describe(ctx, srv, allowed.Credentials(), true)
	if got := errCode(err); got != "DryRunOperation" {
		t.Errorf("auth on, allowed: DryRun error code %q (%v), want DryRunOperation", got, err)
	}
	_, err = describe(ctx, srv, denied.Credentials(), true)
	if got := errCode(err); got != "AccessDenied" {
		t.Errorf("auth on, denied: DryRun error code %q (%v), want AccessDenied", got, err)
	}
}

// With auth off AssumeRole always succeeds, even for a role that does not exist; with auth on the
// caller needs sts:AssumeRole and the trust policy must name it. The session's identity is the
// assumed-role ARN; its permissions are the role's, without the role's permissions boundary.
func testAssumeRole(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	const assume = `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}`
	trusted := mustUser(t, seed, "trusted")
	stranger := mustUser(t, seed, "stranger")
	for _, u := range []awsemu.User{trusted, stranger} {
		mustOK(t, seed.PutUserPolicy(ctx, u.Name, "assume", assume))
	}
	trust := fmt.Sprintf(`{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Principal": {"AWS": %q}, "Action": "sts:AssumeRole"}]}`, trusted.ARN)
	role, err := seed.CreateRole(ctx, "discovery", trust)
	mustOK(t, err)
	mustOK(t, seed.PutRolePolicy(ctx, role.Name, "ec2", `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}`))
	iamOnly, err := seed.CreateManagedPolicy(ctx, "iam-only", `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}`)
	mustOK(t, err)
	mustOK(t, seed.SetRolePermissionsBoundary(ctx, role.Name, iamOnly))

	if _, err := assumeRole(ctx, srv, stranger.Credentials(), role.ARN); err != nil {
		t.Errorf("auth off, untrusted caller: %v, want success", err)
	}
	if _, err := assumeRole(ctx, srv, nil, "arn:aws:iam::123456789012:role/no-such-role"); err != nil {
		t.Errorf("auth off, missing role: %v, want success", err)
	}

	mustEnableAuth(t, srv)
	session, err := assumeRole(ctx, srv, trusted.Credentials(), role.ARN)
	if err != nil {
		t.Fatalf("auth on, trusted caller: %v", err)
	}
	if got, want := aws.ToString(callerIdentity(ctx, t, srv, session).Arn), "arn:aws:sts::123456789012:assumed-role/discovery/ec2guard-test"; got != want {
		t.Errorf("session identity %s, want %s", got, want)
	}
	if _, err := describe(ctx, srv, session, false); err != nil {
		t.Errorf("session DescribeInstances (boundary allows only iam:*): %v; moto ignores boundaries", err)
	}
	_, err = assumeRole(ctx, srv, stranger.Credentials(), role.ARN)
	if got := errCode(err); got != "AccessDenied" {
		t.Errorf("auth on, untrusted caller: error code %q (%v), want AccessDenied", got, err)
	}
}

// DescribeInstances' MaxResults counts reservations, not instances, and moto accepts values that
// AWS rejects (AWS: 5..1000). MaxResults with InstanceIds is rejected as in AWS.
func testPagination(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	var seeded []awsemu.Instance
	for range 6 {
		insts, err := seed.RunInstances(ctx, region, 2, nil)
		mustOK(t, err)
		seeded = append(seeded, insts...)
	}
	c := ec2.NewFromConfig(srv.Config(region, nil))
	pages := func(maxResults int32) (reservations, instances []int) {
		p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(maxResults)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("MaxResults=%d: %v", maxResults, err)
			}
			n := 0
			for _, r := range page.Reservations {
				n += len(r.Instances)
			}
			reservations, instances = append(reservations, len(page.Reservations)), append(instances, n)
		}
		return reservations, instances
	}
	if r, i := pages(5); !slices.Equal(r, []int{5, 1}) || !slices.Equal(i, []int{10, 2}) {
		t.Errorf("MaxResults=5 over 6 reservations of 2: pages of %v reservations / %v instances, want [5 1] / [10 2]", r, i)
	}
	if r, _ := pages(3); !slices.Equal(r, []int{3, 3}) {
		t.Errorf("MaxResults=3 (AWS rejects it): pages of %v reservations, want [3 3]", r)
	}
	if r, _ := pages(2000); !slices.Equal(r, []int{6}) {
		t.Errorf("MaxResults=2000 (AWS rejects it): pages of %v reservations, want [6]", r)
	}
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		MaxResults: aws.Int32(5), InstanceIds: []string{seeded[0].ID},
	})
	if got := errCode(err); got != "InvalidParameterCombination" {
		t.Errorf("MaxResults with InstanceIds: error code %q (%v), want InvalidParameterCombination", got, err)
	}
}

// Tag filters behave as in AWS: keys and values case-sensitive, `*` and `?` wildcards in values,
// `\*` a literal star.
func testTagFilters(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	star, err := seed.RunInstances(ctx, region, 1, map[string]string{"team": "a*b"})
	mustOK(t, err)
	plain, err := seed.RunInstances(ctx, region, 1, map[string]string{"team": "axxb"})
	mustOK(t, err)
	upper, err := seed.RunInstances(ctx, region, 1, map[string]string{"Team": "a*b"})
	mustOK(t, err)
	c := ec2.NewFromConfig(srv.Config(region, nil))
	for _, f := range []struct {
		name, value string
		want        []awsemu.Instance
	}{
		{"tag:team", "a*b", slices.Concat(star, plain)},
		{"tag:team", `a\*b`, star},
		{"tag:team", "a?xb", plain},
		{"tag:team", "A*B", nil},
		{"tag:Team", "a*b", upper},
		{"tag-key", "team", slices.Concat(star, plain)},
		{"tag-key", "Team", upper},
	} {
		got := filterIDs(ctx, t, c, f.name, f.value)
		if want := sortedIDs(f.want); !slices.Equal(got, want) {
			t.Errorf("filter %s=%s: %v, want %v", f.name, f.value, got, want)
		}
	}
}

// Instances are running (with private and public IPv4) as soon as DescribeInstances sees them;
// StopInstances and TerminateInstances take effect at once; terminated instances stay listed.
func testInstanceLifecycle(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	insts, err := seed.RunInstances(ctx, region, 3, map[string]string{"app": "web"})
	mustOK(t, err)
	for _, i := range insts {
		if i.State != "running" || i.PrivateIP == "" || i.PublicIP == "" || !strings.HasPrefix(i.AZ, region) {
			t.Errorf("fresh instance %+v: want running, private and public IP, AZ in %s", i, region)
		}
	}
	mustOK(t, seed.StopInstances(ctx, region, insts[0].ID))
	mustOK(t, seed.TerminateInstances(ctx, region, insts[1].ID))
	mustOK(t, seed.CreateTags(ctx, region, []string{insts[2].ID}, map[string]string{"port": "8080"}))
	mustOK(t, seed.DeleteTags(ctx, region, []string{insts[2].ID}, "app"))
	got, err := seed.DescribeInstances(ctx, region)
	mustOK(t, err)
	states := map[string]string{}
	for _, i := range got {
		states[i.ID] = i.State
	}
	want := map[string]string{insts[0].ID: "stopped", insts[1].ID: "terminated", insts[2].ID: "running"}
	if fmt.Sprint(states) != fmt.Sprint(want) {
		t.Errorf("states %v, want %v", states, want)
	}
	c := ec2.NewFromConfig(srv.Config(region, nil))
	if got := filterIDs(ctx, t, c, "instance-state-name", "running"); !slices.Equal(got, []string{insts[2].ID}) {
		t.Errorf("instance-state-name=running: %v, want only %s", got, insts[2].ID)
	}
	after, err := seed.DescribeInstances(ctx, region, insts[2].ID)
	mustOK(t, err)
	if fmt.Sprint(after[0].Tags) != fmt.Sprint(map[string]string{"port": "8080"}) {
		t.Errorf("tags after CreateTags/DeleteTags: %v, want only port=8080", after[0].Tags)
	}
	other, err := seed.DescribeInstances(ctx, "eu-west-1")
	mustOK(t, err)
	if len(other) != 0 {
		t.Errorf("eu-west-1 lists %d instances seeded in %s", len(other), region)
	}
}

// GetAccountAuthorizationDetails is implemented: users with inline and attached policies and
// groups, groups, roles with trust policy and permissions boundary, managed policies with their
// versions; documents URL-encoded as in AWS. It never pages.
func testAccountAuthorizationDetails(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	u := mustUser(t, seed, "gloo")
	mustOK(t, seed.PutUserPolicy(ctx, u.Name, "inline", describeOnly))
	arn, err := seed.CreateManagedPolicy(ctx, "managed", describeOnly)
	mustOK(t, err)
	mustOK(t, seed.AttachUserPolicy(ctx, u.Name, arn))
	mustGroup(t, seed, "g")
	mustOK(t, seed.AddUserToGroup(ctx, "g", u.Name))
	mustOK(t, seed.AttachGroupPolicy(ctx, "g", arn))
	role, err := seed.CreateRole(ctx, "r", `{"Version": "2012-10-17", "Statement": [
	  {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}`)
	mustOK(t, err)
	mustOK(t, seed.SetRolePermissionsBoundary(ctx, role.Name, arn))

	out, err := seed.IAM().GetAccountAuthorizationDetails(ctx, &iam.GetAccountAuthorizationDetailsInput{})
	mustOK(t, err)
	if len(out.UserDetailList) != 1 || len(out.GroupDetailList) != 1 || len(out.RoleDetailList) != 1 {
		t.Fatalf("users/groups/roles: %d/%d/%d, want 1/1/1", len(out.UserDetailList), len(out.GroupDetailList), len(out.RoleDetailList))
	}
	ud := out.UserDetailList[0]
	if len(ud.UserPolicyList) != 1 || len(ud.AttachedManagedPolicies) != 1 || !slices.Equal(ud.GroupList, []string{"g"}) {
		t.Errorf("user detail: %d inline, %d attached, groups %v; want 1, 1, [g]", len(ud.UserPolicyList), len(ud.AttachedManagedPolicies), ud.GroupList)
	} else {
		raw := aws.ToString(ud.UserPolicyList[0].PolicyDocument)
		doc, err := url.QueryUnescape(raw)
		if err != nil || !strings.HasPrefix(raw, "%7B") || !strings.Contains(doc, `"ec2:DescribeInstances"`) {
			t.Errorf("inline policy document %q: want URL-encoded JSON as in AWS", raw)
		}
	}
	if rd := out.RoleDetailList[0]; rd.PermissionsBoundary == nil || aws.ToString(rd.PermissionsBoundary.PermissionsBoundaryArn) != arn {
		t.Errorf("role detail permissions boundary %+v, want %s", rd.PermissionsBoundary, arn)
	}
	if n := len(out.GroupDetailList[0].AttachedManagedPolicies); n != 1 {
		t.Errorf("group detail: %d attached policies, want 1", n)
	}
	if len(out.Policies) != 1 || len(out.Policies[0].PolicyVersionList) != 1 || !out.Policies[0].PolicyVersionList[0].IsDefaultVersion {
		t.Errorf("policies: %+v, want the one managed policy with its default version", out.Policies)
	}

	// MaxItems is ignored: everything comes in one page (AWS pages with IsTruncated/Marker).
	one, err := seed.IAM().GetAccountAuthorizationDetails(ctx, &iam.GetAccountAuthorizationDetailsInput{MaxItems: aws.Int32(1)})
	mustOK(t, err)
	if n := len(one.UserDetailList) + len(one.GroupDetailList) + len(one.RoleDetailList); n != 3 || one.IsTruncated {
		t.Errorf("MaxItems=1: %d entries, truncated=%v; want all 3 entries in one page", n, one.IsTruncated)
	}
}

// iam:SimulatePrincipalPolicy, iam:SimulateCustomPolicy and iam:PutUserPermissionsBoundary are
// not implemented: moto answers HTTP 500. So does an EC2 call in an unknown region. AWS managed
// policies do not exist unless moto is started with MOTO_IAM_LOAD_MANAGED_POLICIES=true (Start
// does not do that): tests attach customer managed copies instead.
func testNotImplemented(t *testing.T, srv *awsemu.Server) {
	ctx := t.Context()
	seed := srv.Seeder()
	u := mustUser(t, seed, "sim")
	arn, err := seed.CreateManagedPolicy(ctx, "boundary", describeOnly)
	mustOK(t, err)
	_, simErr := seed.IAM().SimulatePrincipalPolicy(ctx, &iam.SimulatePrincipalPolicyInput{
		PolicySourceArn: aws.String(u.ARN), ActionNames: []string{"ec2:DescribeInstances"}, ResourceArns: []string{"*"},
	})
	_, customErr := seed.IAM().SimulateCustomPolicy(ctx, &iam.SimulateCustomPolicyInput{
		PolicyInputList: []string{describeOnly}, ActionNames: []string{"ec2:DescribeInstances"},
	})
	_, regionErr := ec2.NewFromConfig(srv.Config("xx-nowhere-1", nil)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	err = seed.AttachUserPolicy(ctx, u.Name, "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess")
	if got := errCode(err); got != "NoSuchEntity" {
		t.Errorf("attach an AWS managed policy: error code %q (%v), want NoSuchEntity", got, err)
	}
	for name, err := range map[string]error{
		"SimulatePrincipalPolicy":    simErr,
		"SimulateCustomPolicy":       customErr,
		"PutUserPermissionsBoundary": seed.SetUserPermissionsBoundary(ctx, u.Name, arn),
		"EC2 in xx-nowhere-1":        regionErr,
	} {
		if got := httpStatus(err); got != 500 {
			t.Errorf("%s: HTTP status %d (%v), want 500", name, got, err)
		}
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustGroup(t *testing.T, seed *awsemu.Seeder, name string) {
	t.Helper()
	if _, err := seed.CreateGroup(t.Context(), name); err != nil {
		t.Fatal(err)
	}
}

func mustEnableAuth(t *testing.T, srv *awsemu.Server) {
	t.Helper()
	mustOK(t, srv.EnableAuth(t.Context()))
}

func callerIdentity(ctx context.Context, t *testing.T, srv *awsemu.Server, creds aws.CredentialsProvider) *sts.GetCallerIdentityOutput {
	t.Helper()
	out, err := sts.NewFromConfig(srv.Config(region, creds)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return out
}

func describe(ctx context.Context, srv *awsemu.Server, creds aws.CredentialsProvider, dryRun bool) (*ec2.DescribeInstancesOutput, error) {
	return ec2.NewFromConfig(srv.Config(region, creds)).DescribeInstances(ctx, &ec2.DescribeInstancesInput{DryRun: aws.Bool(dryRun)})
}

func assumeRole(ctx context.Context, srv *awsemu.Server, creds aws.CredentialsProvider, roleARN string) (aws.CredentialsProvider, error) {
	out, err := sts.NewFromConfig(srv.Config(region, creds)).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("ec2guard-test"),
	})
	if err != nil {
		return nil, err
	}
	c := out.Credentials
	return awsemu.StaticCredentials(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)), nil
}

func filterIDs(ctx context.Context, t *testing.T, c *ec2.Client, name, value string) []string {
	t.Helper()
	out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String(name), Values: []string{value}}},
	})
	if err != nil {
		t.Fatalf("filter %s=%s: %v", name, value, err)
	}
	ids := []string{}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	slices.Sort(ids)
	return ids
}

// errCode is the AWS error code of err ("" for nil or a non-API error).
func errCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// httpStatus is the HTTP status of the response that caused err (0 if none).
func httpStatus(err error) int {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		return respErr.HTTPStatusCode()
	}
	return 0
}
