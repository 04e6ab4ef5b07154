package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

type previewJSON struct {
	Previews []struct {
		Upstream    string `json:"upstream"`
		File        string `json:"file"`
		Line        int    `json:"line"`
		Region      string `json:"region"`
		Credentials string `json:"credentials"`
		Selected    []struct {
			ID          string            `json:"id"`
			PrivateIP   string            `json:"privateIp"`
			Port        int               `json:"port"`
			State       string            `json:"state"`
			MatchedTags map[string]string `json:"matchedTags"`
		} `json:"selected"`
		NearMisses []struct {
			ID      string   `json:"id"`
			State   string   `json:"state"`
			Reasons []string `json:"reasons"`
		} `json:"nearMisses"`
		IAM struct {
			Principal string `json:"principal"`
			Decision  string `json:"decision"`
			Source    string `json:"source"`
		} `json:"iam"`
		Consistency string `json:"consistency"`
	} `json:"previews"`
}

// TestPreviewAgainstMoto seeds instances that the Upstream selects, near misses (a tag key or value
// that differs only in case or whitespace, a matching instance that is stopped) and instances it
// clearly does not select, and checks that `ec2guard preview` lists exactly the selected ones (with
// the port from the port tag) and exactly the near misses, with the IAM decision and consistency
// class, reading the Upstream's secret from the cluster with the kubeconfig, and printing no secret.
func TestPreviewAgainstMoto(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seed := c.moto.Seeder()
	run := func(tags map[string]string) string {
		t.Helper()
		insts, err := seed.RunInstances(ctx, "us-east-1", 1, tags)
		if err != nil {
			t.Fatal(err)
		}
		return insts[0].ID
	}
	selectedA := run(map[string]string{"app": "web", "team": "a"})
	selectedB := run(map[string]string{"app": "web", "team": "b", "svc-port": "8443"})
	keyCase := run(map[string]string{"App": "web", "team": "a"})
	valueSpace := run(map[string]string{"app": "Web ", "team": "a"})
	stopped := run(map[string]string{"app": "web", "team": "c"})
	if err := seed.StopInstances(ctx, "us-east-1", stopped); err != nil {
		t.Fatal(err)
	}
	run(map[string]string{"app": "api", "team": "a"}) // another value: not a near miss
	run(map[string]string{"app": "web"})              // no team tag: not a near miss
	run(map[string]string{"app": "web", "team": "a"}) // selected as well
	// A matching instance in another region is invisible to a us-east-1 Upstream.
	if _, err := seed.RunInstances(ctx, "eu-west-1", 1, map[string]string{"app": "web", "team": "a"}); err != nil {
		t.Fatal(err)
	}
	insts, err := seed.DescribeInstances(ctx, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	var wantSelected []string
	for _, i := range insts {
		if i.Tags["app"] == "web" && i.Tags["team"] != "" && i.State == "running" {
			wantSelected = append(wantSelected, i.ID)
		}
	}
	sort.Strings(wantSelected)
	if len(wantSelected) != 3 || !contains(wantSelected, selectedA) || !contains(wantSelected, selectedB) {
		t.Fatalf("seeded selected instances %v", wantSelected)
	}

	secretKey := c.user.SecretAccessKey
	if r := runCmd(t, "", nil, os.Getenv(k8senv.KubectlEnv), "--kubeconfig", c.env.KubeconfigPath, "apply", "-f",
		writeFile(t, t.TempDir(), "s.yaml", secretManifest("team-a", "aws", c.user.AccessKeyID, secretKey))); r.code != 0 {
		t.Fatalf("apply secret: %s", r)
	}
	dir := t.TempDir()
	upstream := writeFile(t, dir, "upstream.yaml", `apiVersion: gloo.solo.io/v1
kind: Upstream
metadata:
  name: web
  namespace: team-a
  annotations:
    ec2guard.io/port-tag: svc-port
spec:
  awsEc2:
    region: us-east-1
    port: 8080
    secretRef: {name: aws, namespace: team-a}
    filters:
    - kvPair: {key: app, value: web}
    - key: team
`)
	env := []string{"KUBECONFIG=" + c.env.KubeconfigPath, "EC2GUARD_AWS_ENDPOINT=" + c.moto.Endpoint()}
	r := ec2guard(t, env, "preview", "-f", upstream, "-o", "json")
	if r.code != 0 {
		t.Fatalf("preview: %s", r)
	}
	var out previewJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Previews) != 1 {
		t.Fatalf("preview -o json: %v\n%s", err, r)
	}
	p := out.Previews[0]
	if p.Upstream != "team-a/web" || p.File != upstream || p.Line != 1 || p.Region != "us-east-1" ||
		!strings.HasPrefix(p.Credentials, "secret team-a/aws (from the cluster") {
		t.Errorf("preview header %+v", p)
	}
	var gotSelected []string
	for _, s := range p.Selected {
		gotSelected = append(gotSelected, s.ID)
		wantPort := 8080
		if s.ID == selectedB {
			wantPort = 8443
		}
		if s.Port != wantPort || s.State != "running" || s.PrivateIP == "" || s.MatchedTags["app"] != "web" || s.MatchedTags["team"] == "" || len(s.MatchedTags) != 2 {
			t.Errorf("selected %+v, want port %d, running, the app and team tags", s, wantPort)
		}
	}
	if !reflect.DeepEqual(gotSelected, wantSelected) {
		t.Errorf("selected %v, want exactly %v", gotSelected, wantSelected)
	}
	wantNear := map[string]string{
		keyCase: `tag key "App" differs from filter key "app" only in case; ` +
			`Gloo's own EC2 plugin, which lowercases tag keys, would select it (see the case-sensitivity result of the consistency report)`,
		valueSpace: `tag app: value "Web " differs only in case and surrounding whitespace from "web"`,
		stopped:    "instance is stopped, not running",
	}
	gotNear := map[string]string{}
	for _, n := range p.NearMisses {
		gotNear[n.ID] = strings.Join(n.Reasons, "; ")
	}
	if !reflect.DeepEqual(gotNear, wantNear) {
		t.Errorf("near misses\n got %q\nwant %q", gotNear, wantNear)
	}
	if p.IAM.Decision != "allowed" || p.IAM.Source != "local" || p.IAM.Principal != c.user.ARN ||
		p.Consistency != "permissive-credentials-discerning-filters" {
		t.Errorf("IAM %+v, consistency %q", p.IAM, p.Consistency)
	}

	text := ec2guard(t, env, "preview", "-f", upstream)
	t.Logf("ec2guard preview -f upstream.yaml:\n%s", text.stdout)
	for _, want := range []string{
		"team-a/web (" + upstream + ":1)",
		"IAM: allowed (source local, principal " + c.user.ARN + "); consistency: permissive-credentials-discerning-filters",
		"3 selected instances:",
		"3 near misses:",
		selectedB,
		"port 8443",
	} {
		if !strings.Contains(text.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	for _, res := range []result{r, text} {
		for _, s := range []string{secretKey, secretKey[:10], secretKey[len(secretKey)-10:], c.user.AccessKeyID} {
			if strings.Contains(res.stdout+res.stderr, s) {
				t.Fatalf("preview printed secret material %q:\n%s", s[:4]+"…", res)
			}
		}
	}

	// A policy that does not allow the region: the webhook's IAM decision, exit 1.
	euUpstream := writeFile(t, dir, "eu.yaml", strings.Replace(mustRead(t, upstream), "region: us-east-1", "region: eu-west-1", 1))
	r = ec2guard(t, env, "preview", "-f", euUpstream, "-o", "json")
	out = previewJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 1 || len(out.Previews) != 1 ||
		out.Previews[0].IAM.Decision != "implicitDeny" || out.Previews[0].Consistency != "credentials-deny" {
		t.Errorf("eu-west-1 preview: %v\n%s", err, r)
	}

	// Secret not in the cluster: exit 2 naming it.
	r = ec2guard(t, env, "preview", "-f", writeFile(t, dir, "other.yaml", strings.Replace(mustRead(t, upstream), "name: aws,", "name: nope,", 1)))
	if r.code != 2 || !strings.Contains(r.stderr, "secret team-a/nope does not exist in the cluster") {
		t.Errorf("missing secret: %s", r)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
