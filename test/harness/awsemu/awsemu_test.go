package awsemu_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ec2guard/ec2guard/test/harness/awsemu"
)

// describeOnly lets a principal list instances and nothing else.
const describeOnly = `{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}]}`

// TestSeedAndList seeds two users and ten tagged instances in two regions, turns IAM enforcement
// on, and lists each region with one user's keys: the SDK sees exactly the seeded instances and
// tags, and GetCallerIdentity names the user whose keys signed the call.
func TestSeedAndList(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := t.Context()
	srv := awsemu.Start(t)
	seed := srv.Seeder()

	alice := mustUser(t, seed, "alice")
	bob := mustUser(t, seed, "bob")
	for _, u := range []awsemu.User{alice, bob} {
		if err := seed.PutUserPolicy(ctx, u.Name, "describe", describeOnly); err != nil {
			t.Fatal(err)
		}
	}

	// 6 instances in us-east-1 and 4 in eu-west-1, in several reservations, with varied tags.
	launches := []struct {
		region string
		n      int
		tags   map[string]string
	}{
		{"us-east-1", 3, map[string]string{"app": "web", "env": "prod"}},
		{"us-east-1", 2, map[string]string{"app": "api", "Env": "Prod", "team": "a*b?"}},
		{"us-east-1", 1, nil},
		{"eu-west-1", 2, map[string]string{"app": "web", "env": "staging"}},
		{"eu-west-1", 1, map[string]string{"gloo": ""}},
		{"eu-west-1", 1, map[string]string{"app": "db", "port": "8080"}},
	}
	want := map[string]map[string]map[string]string{} // region -> id -> tags
	for _, l := range launches {
		insts, err := seed.RunInstances(ctx, l.region, l.n, l.tags)
		if err != nil {
			t.Fatal(err)
		}
		if len(insts) != l.n {
			t.Fatalf("RunInstances(%s, %d) returned %d instances", l.region, l.n, len(insts))
		}
		for _, inst := range insts {
			if inst.State != "running" || inst.PrivateIP == "" || inst.AZ == "" {
				t.Errorf("seeded instance %+v: want running with a private IP and an AZ", inst)
			}
			if want[l.region] == nil {
				want[l.region] = map[string]map[string]string{}
			}
			want[l.region][inst.ID] = orEmpty(l.tags)
		}
	}

	if err := srv.EnableAuth(ctx); err != nil {
		t.Fatal(err)
	}
	for region, wantInstances := range want {
		got := listInstances(ctx, t, ec2.NewFromConfig(srv.Config(region, alice.Credentials())))
		if !maps.EqualFunc(got, wantInstances, maps.Equal) {
			t.Errorf("%s listed with alice's keys:\n got %v\nwant %v", region, got, wantInstances)
		}
	}
	if n := len(want["us-east-1"]) + len(want["eu-west-1"]); n != 10 {
		t.Fatalf("seeded %d instances, want 10", n)
	}

	for _, u := range []awsemu.User{alice, bob} {
		client := sts.NewFromConfig(srv.Config("us-east-1", u.Credentials()))
		id, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatalf("GetCallerIdentity with %s's keys: %v", u.Name, err)
		}
		if got := aws.ToString(id.Arn); got != u.ARN {
			t.Errorf("GetCallerIdentity with %s's keys: ARN %s, want %s", u.Name, got, u.ARN)
		}
		if want := fmt.Sprintf("arn:aws:iam::%s:user/%s", awsemu.AccountID, u.Name); u.ARN != want {
			t.Errorf("seeded user ARN %s, want %s", u.ARN, want)
		}
	}
}

func mustUser(t *testing.T, seed *awsemu.Seeder, name string) awsemu.User {
	t.Helper()
	u, err := seed.CreateUser(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if u.AccessKeyID == "" || u.SecretAccessKey == "" {
		t.Fatalf("user %v has no access key", u)
	}
	return u
}

// listInstances returns every instance DescribeInstances shows, id -> tags, across all pages.
func listInstances(ctx context.Context, t *testing.T, c *ec2.Client) map[string]map[string]string {
	t.Helper()
	got := map[string]map[string]string{}
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("DescribeInstances: %v", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				id := aws.ToString(inst.InstanceId)
				if _, dup := got[id]; dup {
					t.Errorf("instance %s listed twice", id)
				}
				got[id] = awsemu.TagMap(inst.Tags)
			}
		}
	}
	return got
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// sortedIDs is used by the behaviour tests to compare id sets.
func sortedIDs(insts []awsemu.Instance) []string {
	ids := make([]string, 0, len(insts))
	for _, i := range insts {
		ids = append(ids, i.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestStop: after Stop the endpoint refuses connections at once (how tests simulate an unreachable
// AWS), and a second Stop is harmless.
func TestStop(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	srv := awsemu.Start(t)
	client := sts.NewFromConfig(srv.Config("us-east-1", nil))
	if _, err := client.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("before Stop: %v", err)
	}
	srv.Stop()
	srv.Stop()
	_, err := client.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("after Stop: %v, want connection refused", err)
	}
}

// TestUserFormattingHidesSecret: printing a seeded user never shows its secret access key.
func TestUserFormattingHidesSecret(t *testing.T) {
	u := awsemu.User{Name: "n", ARN: "arn:aws:iam::123456789012:user/n", AccessKeyID: "AKIAEXAMPLEKEY000000", SecretAccessKey: "s3cr3t-value"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, u)
		if strings.Contains(out, u.SecretAccessKey) || !strings.Contains(out, u.AccessKeyID) {
			t.Errorf("%s: %q shows the secret or lacks the key id", verb, out)
		}
	}
}
