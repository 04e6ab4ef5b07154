package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	seedPolicy  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":["arn:aws:ec2:us-east-1:111122223333:instance/*"],"Condition":{"StringEquals":{"ec2:ResourceTag/Owner":"Gloo"}}}]}`
	fixedPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"DescribeInstancesInOneRegion","Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}`
)

func simulate(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"simulate"}, args...), strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSimulateSeedPolicyExplains(t *testing.T) {
	dir := t.TempDir()
	seed := writeFile(t, dir, "seed-policy.json", seedPolicy)
	code, out, errOut := simulate(t, "", "--policy", seed, "--action", "ec2:DescribeInstances", "--resource", "*", "--context", "aws:RequestedRegion=us-east-1")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (denied); stderr: %s", code, errOut)
	}
	for _, want := range []string{"implicitDeny", "RESOURCE_MISMATCH", "UNSUPPORTED_CONDITION_KEY", `statement #0 of identity policy "seed-policy.json"`, `"Resource": "*"`, "aws:RequestedRegion", "Upstream's filters"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSimulateFixedPolicyJSON(t *testing.T) {
	dir := t.TempDir()
	fixed := writeFile(t, dir, "fixed-policy.json", fixedPolicy)
	code, out, errOut := simulate(t, "", "--policy", fixed, "--action", "ec2:DescribeInstances", "--context", "aws:RequestedRegion=us-east-1", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errOut)
	}
	var d struct {
		Decision          string
		MatchedStatements []struct{ Policy, Sid string }
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if d.Decision != "allowed" || len(d.MatchedStatements) != 1 || d.MatchedStatements[0].Sid != "DescribeInstancesInOneRegion" {
		t.Fatalf("unexpected: %+v", d)
	}
	code, out, _ = simulate(t, "", "--policy", fixed, "--action", "ec2:DescribeInstances", "--context", "aws:RequestedRegion=eu-west-1")
	if code != 1 || !strings.Contains(out, "REGION_MISMATCH") {
		t.Fatalf("eu-west-1: exit %d\n%s", code, out)
	}
}

func TestSimulateBoundaryAndSCP(t *testing.T) {
	dir := t.TempDir()
	fixed := writeFile(t, dir, "fixed.json", fixedPolicy)
	s3only := writeFile(t, dir, "s3.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`)
	all := writeFile(t, dir, "all.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	base := []string{"--policy", fixed, "--action", "ec2:DescribeInstances", "--context", "aws:RequestedRegion=us-east-1"}
	if code, out, _ := simulate(t, "", append(base, "--boundary", s3only)...); code != 1 {
		t.Errorf("boundary: exit %d\n%s", code, out)
	}
	if code, out, _ := simulate(t, "", append(base, "--scp", all, "--scp", s3only)...); code != 1 {
		t.Errorf("scp levels: exit %d\n%s", code, out)
	}
	if code, out, _ := simulate(t, "", append(base, "--scp", all, "--boundary", all)...); code != 0 {
		t.Errorf("all allow: exit %d\n%s", code, out)
	}
}

func TestSimulateUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLikee":{"aws:username":"x"}}}]}`)
	fixed := writeFile(t, dir, "fixed.json", fixedPolicy)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--action", "ec2:DescribeInstances"}, "give at least one --policy"},
		{[]string{"--policy", fixed}, "--action is required"},
		{[]string{"--policy", bad, "--action", "ec2:DescribeInstances"}, `Statement[0].Condition.StringLikee: unknown operator "StringLikee"`},
		{[]string{"--policy", filepath.Join(dir, "missing.json"), "--action", "ec2:DescribeInstances"}, "missing.json"},
		{[]string{"--policy", fixed, "--action", "ec2:NoSuchAction"}, "unknown to the IAM action catalog"},
		{[]string{"--policy", fixed, "--action", "ec2:DescribeInstances", "--context", "novalue"}, "want key=value"},
		{[]string{"--policy", fixed, "--action", "ec2:DescribeInstances", "-o", "yaml"}, "-o must be text or json"},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"--batch", "x.jsonl", "--policy", fixed}, "--batch takes its policies"},
	}
	for _, tc := range cases {
		code, _, errOut := simulate(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func caseLine(id, policy, region string) string {
	return fmt.Sprintf(`{"id":%q,"request":{"principal":"arn:aws:iam::111122223333:user/gloo","action":"ec2:DescribeInstances","resource":"*","context":{"aws:RequestedRegion":%q}},"identityPolicies":[%s],"permissionsBoundary":null,"scps":[],"rcps":[],"resourcePolicy":null,"sessionPolicy":null}`, id, region, policy)
}

func TestSimulateBatchStreamsInOrder(t *testing.T) {
	var in strings.Builder
	var want []string
	for i := range 200 {
		policy, region, dec := fixedPolicy, "us-east-1", "allowed"
		switch i % 4 {
		case 1:
			region, dec = "eu-west-1", "implicitDeny"
		case 2:
			policy, dec = seedPolicy, "implicitDeny"
		}
		id := fmt.Sprintf("c%d", i)
		if i%4 == 3 {
			in.WriteString(`{"id":"` + id + `","request":{"principal":"arn:aws:iam::111122223333:user/gloo","action":"ec2:DescribeInstances"},"identityPolicies":[{"Statement":{"Effect":"allow"}}]}` + "\n\n")
			dec = "error"
		} else {
			in.WriteString(caseLine(id, policy, region) + "\n")
		}
		want = append(want, id+" "+dec)
	}
	in.WriteString("not json\n")
	want = append(want, " error")
	code, out, errOut := simulate(t, in.String(), "--batch", "-", "--parallel", "4")
	if code != 2 || !strings.Contains(errOut, "51 case(s) could not be evaluated") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d output lines for %d cases", len(lines), len(want))
	}
	for i, l := range lines {
		var r struct{ ID, Decision, Error string }
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d not JSON: %s", i, l)
		}
		got := r.ID + " " + r.Decision
		if r.Error != "" {
			got = r.ID + " error"
		}
		if got != want[i] {
			t.Errorf("line %d: got %q, want %q (%s)", i, got, want[i], l)
		}
	}
	if !strings.Contains(lines[3], `Statement.Effect`) {
		t.Errorf("error line does not name the element: %s", lines[3])
	}
	if !strings.Contains(lines[0], `"matchedStatements":[{`) || !strings.Contains(lines[1], `"findings":[{"code":"REGION_MISMATCH"`) {
		t.Errorf("decision lines lack explanations:\n%s\n%s", lines[0], lines[1])
	}
}

func TestSimulateBatchFileAllGood(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "cases.jsonl", caseLine("a", fixedPolicy, "us-east-1")+"\n"+caseLine("b", seedPolicy, "us-east-1")+"\n")
	code, out, errOut := simulate(t, "", "--batch", f)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Fatalf("%d lines:\n%s", n, out)
	}
	if code, _, errOut := simulate(t, "", "--batch", filepath.Join(dir, "nope.jsonl")); code != 2 || !strings.Contains(errOut, "nope.jsonl") {
		t.Fatalf("missing file: exit %d %q", code, errOut)
	}
}
