package discoverer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDiscovererBinary runs cmd/discoverer as a process — flags, manager, leader election,
// probes, metrics, signal handling — against envtest and moto, and checks that it publishes an
// Upstream's instances and shuts down cleanly on SIGTERM.
func TestDiscovererBinary(t *testing.T) {
	moto := awsemu.Start(t)
	env := k8senv.Start(t, k8senv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	root, err := k8senv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "discoverer")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/discoverer")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/discoverer: %v\n%s", err, out)
	}

	insts, err := moto.Seeder().RunInstances(ctx, east, 3, map[string]string{"app": "smoke"})
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "aws"},
		Data: map[string][]byte{
			"aws_access_key_id":     []byte("AKIAIOSFODNN7EXAMPLE"),
			"aws_secret_access_key": []byte("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYAB"),
		},
	}
	if err := env.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	up := `apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: smoke, namespace: default}
spec:
  awsEc2:
    region: us-east-1
    secretRef: {name: aws, namespace: default}
    filters:
    - kvPair: {key: app, value: smoke}
`
	if out, errOut, err := env.KubectlWithInput(ctx, strings.NewReader(up), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
	}

	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	var logs lockedBuffer
	cmd := exec.CommandContext(ctx, bin,
		"--kubeconfig", env.KubeconfigPath, "--aws-endpoint", moto.Endpoint(), "--interval", "2s",
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr,
		"--leader-election-namespace", "default", "--log-format", "text", "--iam-audit=false")
	cmd.Env = append(cmd.Environ(), "AWS_EC2_METADATA_DISABLED=true")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("discoverer output:\n%s", logs.String())
		}
	})

	// Wait (bounded) for the slices: the process reports nothing else to wait on.
	deadline := time.Now().Add(3 * time.Minute)
	var got []string
	for time.Now().Before(deadline) {
		var l discoveryv1.EndpointSliceList
		if err := env.Client.List(ctx, &l, client.InNamespace("default"),
			client.MatchingLabels{discoveryv1.LabelServiceName: discovery.ServiceName("smoke")}); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				got = append(got, e.Addresses[0])
			}
		}
		if len(got) == len(insts) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("discoverer exited: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, in := range insts {
		if !strings.Contains(strings.Join(got, " "), in.PrivateIP) {
			t.Fatalf("published %v, want the private IPs of %d instances (missing %s)", got, len(insts), in.PrivateIP)
		}
	}

	if code, body := httpGet(t, "http://"+probeAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `ec2guard_discoverer_aws_calls_total{api="ec2:DescribeInstances",code="OK"}`) ||
		!strings.Contains(body, `ec2guard_discoverer_upstream_endpoints{namespace="default",upstream="smoke"} 3`) {
		t.Errorf("/metrics lacks the discoverer's metrics: %d\n%s", code, body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("discoverer exit after SIGTERM: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("discoverer did not stop within a minute of SIGTERM")
	}
	if out := logs.String(); strings.Contains(out, "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYAB") {
		t.Error("the discoverer logged the secret access key")
	} else if !strings.Contains(out, "discoverer stopped") {
		t.Errorf("no clean stop in the logs:\n%s", out)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, fmt.Sprint(b.String())
}
