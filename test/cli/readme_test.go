package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

// readmeCommand is one command of the README's "Using the CLI" section with what it promises.
type readmeCommand struct {
	line    int // README line of the command
	command string
	exit    int
	output  string // a line (or part of one) of its stdout or stderr
	cluster bool   // in a block marked <!-- cli-test: cluster -->
}

var expectRe = regexp.MustCompile(`^# exit (\d+): (.*)$`)

// readmeCommands extracts the commands of the section from README.md: every line of its ```sh
// blocks that is not a comment (a trailing backslash continues it), each followed by its
// `# exit N: output` line.
func readmeCommands(t *testing.T, readme string) []readmeCommand {
	t.Helper()
	lines := strings.Split(readme, "\n")
	start := -1
	for i, l := range lines {
		if l == "## Using the CLI" {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal(`README.md has no "## Using the CLI" section`)
	}
	var out []readmeCommand
	inBlock, cluster, marked := false, false, false
	var cur *readmeCommand
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case !inBlock && strings.HasPrefix(l, "## "):
			i = len(lines) // the next section
		case !inBlock && l == "<!-- cli-test: cluster -->":
			marked = true
		case !inBlock && l == "```sh":
			inBlock, cluster, marked = true, marked, false
		case !inBlock:
		case l == "```":
			inBlock = false
			if cur != nil {
				t.Errorf("README.md:%d: %q has no `# exit N: output` line", cur.line, cur.command)
				cur = nil
			}
		case strings.HasPrefix(l, "#"):
			m := expectRe.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if cur == nil {
				t.Errorf("README.md:%d: expectation without a command", i+1)
				continue
			}
			cur.exit, _ = strconv.Atoi(m[1])
			cur.output = m[2]
			out = append(out, *cur)
			cur = nil
		case strings.TrimSpace(l) == "":
		default:
			if cur != nil {
				t.Errorf("README.md:%d: %q has no `# exit N: output` line", cur.line, cur.command)
			}
			cmd := l
			for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
				i++
				cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[i])
			}
			cur = &readmeCommand{line: i + 1, command: cmd, cluster: cluster}
		}
	}
	return out
}

// TestReadmeCommands runs every command of the README's "Using the CLI" section from the repository
// root, as shown, and checks its exit code and the output line the README gives. The commands of
// the cluster block run against a local kube-apiserver (KUBECONFIG) and moto (EC2GUARD_AWS_ENDPOINT)
// seeded with instances the tutorial Upstream selects.
func TestReadmeCommands(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(t, string(b))
	var offline, clusterCmds []readmeCommand
	for _, c := range cmds {
		if c.cluster {
			clusterCmds = append(clusterCmds, c)
		} else {
			offline = append(offline, c)
		}
	}
	if len(offline) < 5 || len(clusterCmds) < 2 {
		t.Fatalf("found %d offline and %d cluster commands in the README; the extraction is broken", len(offline), len(clusterCmds))
	}
	check := func(t *testing.T, c readmeCommand, env []string) {
		t.Helper()
		r := runCmd(t, root, env, "bash", "-c", c.command)
		if r.code != c.exit || !strings.Contains(r.stdout+r.stderr, c.output) {
			t.Errorf("README.md:%d: %s\nwant exit %d and output with %q; got %s", c.line, c.command, c.exit, c.output, r)
		}
	}
	for _, c := range offline {
		check(t, c, nil)
	}

	k8senv.RequireEnv(t, k8senv.AssetsEnv)
	c := startCluster(t)
	c.serveWebhook(t) // the tutorial Upstream is applied through the webhook
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tutorial := map[string]string{"gloo-id": "1", "gloo-tag": "group1", "version": "v1.2.3"}
	if _, err := c.moto.Seeder().RunInstances(ctx, "us-east-1", 2, tutorial); err != nil {
		t.Fatal(err)
	}
	if _, err := c.moto.Seeder().RunInstances(ctx, "us-east-1", 1, map[string]string{"gloo-tag": "group2"}); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"KUBECONFIG=" + c.env.KubeconfigPath,
		"EC2GUARD_AWS_ENDPOINT=" + c.moto.Endpoint(),
		"PATH=" + filepath.Dir(os.Getenv(k8senv.KubectlEnv)) + string(os.PathListSeparator) + os.Getenv("PATH"),
	}
	for _, cmd := range clusterCmds {
		check(t, cmd, env)
	}
}
