package demo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/test/demo"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

func TestMain(m *testing.M) {
	k8senv.LogTo(os.Stderr)
	os.Exit(m.Run())
}

// requireParts skips (or fails under EC2GUARD_INTEGRATION=1) without the demo's parts.
func requireParts(t *testing.T) {
	t.Helper()
	k8senv.RequireEnv(t, k8senv.AssetsEnv)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	k8senv.RequireEnv(t, awsemu.EnvServer)
	k8senv.RequireEnv(t, demo.HelmEnv)
}

// TestDemo runs the walk `make demo` runs and checks each step's outcome from what the commands
// returned and what the cluster holds, then that every process the demo started is gone and its
// ports are free; then the same after interrupting the `make demo` program.
func TestDemo(t *testing.T) {
	requireParts(t)
	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := binproc.BuildPackages(t, "./cmd/webhook", "./cmd/discoverer", "./cmd/ec2guard", "./hack/demo")
	t.Run("steps", func(t *testing.T) { testSteps(t, root, bin) })
	t.Run("interrupted", func(t *testing.T) { testInterrupted(t, root, bin) })
}

func testSteps(t *testing.T, root, bin string) {

	var out bytes.Buffer
	var res *demo.Result
	logDir := t.TempDir() // outlives the walk, for the log checks below
	// The walk runs in a subtest so that everything it started is stopped (its cleanups) before
	// the checks on processes and ports below.
	t.Run("walk", func(t *testing.T) {
		var err error
		res, err = demo.Run(context.Background(), t, demo.Options{Root: root, BinDir: bin, LogDir: logDir, Out: &out})
		if err != nil {
			t.Errorf("demo: %v", err)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("demo output:\n%s", out.String())
		}
	})
	if res == nil {
		t.Fatal("the demo returned no result")
	}
	printed := out.String()

	t.Run("seed policy rejected with the statement and the fix", func(t *testing.T) {
		s := res.SeedRejected
		if s.Err == nil {
			t.Fatalf("kubectl apply succeeded:\n%s", s.Stdout)
		}
		for _, want := range []string{
			`admission webhook "validate-upstream.ec2guard.io" denied the request`,
			"EC2G501 spec.upstreamSpec.awsEc2.secretRef: " + res.SeedUser.ARN + " may not call ec2:DescribeInstances in us-east-1",
			`RESOURCE_MISMATCH spec.upstreamSpec.awsEc2.secretRef: statement #0 of identity policy "inline policy seed-policy of user/gloo-seed"`,
			`set "Resource": "*"`,
			"UNSUPPORTED_CONDITION_KEY", "ec2:ResourceTag/Owner",
		} {
			if !strings.Contains(s.Stderr, want) {
				t.Errorf("the rejection lacks %q:\n%s", want, s.Stderr)
			}
		}
		if !strings.Contains(printed, "$ kubectl apply -f examples/seed-upstream-demo.yaml\n") || !strings.Contains(printed, s.Stderr) {
			t.Error("the demo did not print the command and kubectl's output")
		}
	})

	t.Run("fixed policy created and annotated", func(t *testing.T) {
		s := res.FixedCreated
		if s.Err != nil || !strings.Contains(s.Stdout, "upstream.gloo.solo.io/ec2-demo-upstream created") {
			t.Fatalf("kubectl apply: %v\n%s%s", s.Err, s.Stdout, s.Stderr)
		}
		want := map[string]string{
			admission.AnnotationPrincipal:   res.FixedUser.ARN,
			admission.AnnotationIAMDecision: "allowed",
			admission.AnnotationIAMSource:   "local",
			admission.AnnotationConsistency: "permissive-credentials-discerning-filters",
		}
		if fmt.Sprint(res.Annotations) != fmt.Sprint(want) {
			t.Errorf("annotations %v, want %v", res.Annotations, want)
		}
		for k, v := range want {
			if !strings.Contains(printed, "    "+k+": "+v+"\n") {
				t.Errorf("the printed kubectl get -o yaml lacks %s: %s", k, v)
			}
		}
	})

	// The tests' own reading of the tutorial's filters: key gloo-id, gloo-tag=group1, version=v1.2.3.
	matching := func(except string) []string {
		var ips []string
		for _, i := range res.Instances {
			_, hasID := i.Tags["gloo-id"]
			if i.State == "running" && hasID && i.Tags["gloo-tag"] == "group1" && i.Tags["version"] == "v1.2.3" && i.ID != except {
				ips = append(ips, i.PrivateIP)
			}
		}
		sort.Strings(ips)
		return ips
	}

	t.Run("endpointslices hold exactly the running matching instances", func(t *testing.T) {
		want := matching("")
		if len(want) != 3 || len(res.Instances) != 7 {
			t.Fatalf("seeded %d instances, %d running and matching; want 7 and 3", len(res.Instances), len(want))
		}
		if !slices.Equal(res.SliceIPs, want) {
			t.Errorf("published %v, want %v", res.SliceIPs, want)
		}
		for _, i := range res.Instances {
			shown := strings.Contains(res.Slices.Stdout, i.PrivateIP)
			if shown != slices.Contains(want, i.PrivateIP) {
				t.Errorf("kubectl get endpointslices shows %s: %t, want %t:\n%s", i.PrivateIP, shown, !shown, res.Slices.Stdout)
			}
		}
	})

	t.Run("retagged instance leaves the slice", func(t *testing.T) {
		if res.Retagged == "" {
			t.Fatal("no instance was retagged")
		}
		want := matching(res.Retagged)
		if len(want) != 2 || !slices.Equal(res.SliceIPsRetag, want) {
			t.Errorf("after retagging %s the slice holds %v, want %v", res.Retagged, res.SliceIPsRetag, want)
		}
		for _, i := range res.Instances {
			if i.ID == res.Retagged && strings.Contains(res.SlicesRetag.Stdout, i.PrivateIP) {
				t.Errorf("kubectl get endpointslices still shows the retagged %s:\n%s", i.PrivateIP, res.SlicesRetag.Stdout)
			}
		}
		t.Logf("the slice changed %s after the retag (interval %s)", res.RetagDelay.Round(100*time.Millisecond), demo.DefaultInterval)
	})

	t.Run("ec2guard report renders the consistency report", func(t *testing.T) {
		s := res.Report
		if s.Err != nil {
			t.Fatalf("ec2guard report: %v\n%s", s.Err, s.Stderr)
		}
		row := reportRow(s.Stdout, "ec2-demo-upstream")
		want := map[string]string{"NAMESPACE": "gloo-system", "REGION": "us-east-1",
			"CONSISTENCY": "permissive-credentials-discerning-filters", "MATCHED": "2", "FAIL": "0", "RESULT": "pass"}
		for k, v := range want {
			if row[k] != v {
				t.Errorf("report column %s = %q, want %q:\n%s", k, row[k], v, s.Stdout)
			}
		}
	})

	t.Run("broken filter rejected", func(t *testing.T) {
		s := res.Broken
		if s.Err == nil || !strings.Contains(s.Stderr, "EC2G101 spec.upstreamSpec.awsEc2.filters[1]: exactly one of key or kvPair must be set") {
			t.Errorf("kubectl apply of the broken filter: %v\n%s%s", s.Err, s.Stdout, s.Stderr)
		}
	})

	t.Run("borrowed secret rejected", func(t *testing.T) {
		s := res.CrossNS
		if s.Err == nil || !strings.Contains(s.Stderr, `EC2G401 spec.awsEc2.secretRef: user "alice" may not get secret default/gloo-tag-group1`) {
			t.Errorf("kubectl --as=alice apply: %v\n%s%s", s.Err, s.Stdout, s.Stderr)
		}
		if !strings.Contains(printed, "$ kubectl auth can-i get secret/gloo-tag-group1 -n default --as=alice\nno\n") {
			t.Error("the demo did not show that alice may not read the secret")
		}
	})

	t.Run("no secret in the output or the logs", func(t *testing.T) {
		texts := map[string]string{"the demo's output": printed}
		for _, name := range []string{"webhook.log", "discoverer.log"} {
			b, err := os.ReadFile(filepath.Join(logDir, name))
			if err != nil || len(b) == 0 {
				t.Errorf("%s: %v (%d bytes)", name, err, len(b))
			}
			texts[name] = string(b)
		}
		for _, u := range []awsemu.User{res.SeedUser, res.FixedUser} {
			for where, text := range texts {
				if u.SecretAccessKey == "" || strings.Contains(text, u.SecretAccessKey) {
					t.Errorf("%s holds the secret access key of %s (or it is empty)", where, u.Name)
				}
			}
		}
	})

	checkStopped(t, res.Processes, res.Commands, res.Ports)
}

// checkStopped: every process is gone and nothing listens on the ports.
func checkStopped(t *testing.T, pids []int, commands map[int]string, ports []int) {
	t.Helper()
	var names []string
	for _, pid := range pids {
		names = append(names, filepath.Base(strings.Fields(commands[pid] + " ?")[0]))
		if binproc.Alive(pid) {
			t.Errorf("process %d (%s) is still running", pid, commands[pid])
		}
	}
	for _, want := range []string{"etcd", "kube-apiserver", "webhook", "discoverer"} {
		if !slices.Contains(names, want) {
			t.Errorf("the demo's processes %v do not include %s", names, want)
		}
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "moto") || strings.HasPrefix(n, "python") }) {
		t.Errorf("the demo's processes %v do not include moto", names)
	}
	if len(ports) < 6 {
		t.Errorf("recorded ports %v; want at least etcd, kube-apiserver, moto, the webhook and the probes", ports)
	}
	for _, p := range ports {
		if !demo.PortFree(p) {
			t.Errorf("port %d is still open", p)
		}
	}
	t.Logf("stopped: %v; ports free: %v", names, ports)
}

// reportRow returns the columns of the table row of upstream in `ec2guard report` output.
func reportRow(table, upstream string) map[string]string {
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) < 2 {
		return nil
	}
	header := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == len(header) && slices.Contains(f, upstream) {
			row := map[string]string{}
			for i, h := range header {
				row[h] = f[i]
			}
			return row
		}
	}
	return nil
}

// testInterrupted runs the `make demo` program (hack/demo), interrupts it with SIGINT in the
// middle of the walk, and checks that it stops every process it started and frees their ports.
// The program runs through binproc, so if the test fails its whole process group is stopped.
func testInterrupted(t *testing.T, root, bin string) {
	p := binproc.StartConfig(t, binproc.Config{Bin: filepath.Join(bin, "demo"), Args: []string{"-bin", bin, "-logs", t.TempDir()}, Dir: root})
	// Interrupt once the discoverer is publishing: every process is running then.
	var printed string
	poll.Until(t, 5*time.Minute, "the demo to reach step 6", func() (bool, string) {
		printed, _ = p.Log()
		return strings.Contains(printed, "\n== 6.") || p.Exited(), p.Tail(2 << 10)
	})
	if p.Exited() {
		t.Fatalf("the demo ended before step 6 (%v):\n%s", p.ExitErr(), printed)
	}
	pids, err := binproc.Descendants(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	commands := map[int]string{}
	var ports []int
	for _, pid := range pids {
		commands[pid] = binproc.CommandLine(pid)
		ports = append(ports, demo.ListeningPorts(commands[pid])...)
	}
	if err := p.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(2 * time.Minute):
		t.Fatalf("the demo was still running 2 minutes after SIGINT:\n%s", p.Tail(8<<10))
	}
	var ee *exec.ExitError
	if err := p.ExitErr(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("the interrupted demo exited with %v, want exit code 1", err)
	}
	printed, err = p.Log()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(printed, "stopping everything the demo started") {
		t.Errorf("the demo did not say it was stopping:\n%s", printed)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("demo output:\n%s", printed)
	}
	slices.Sort(ports)
	checkStopped(t, pids, commands, slices.Compact(ports))
}
