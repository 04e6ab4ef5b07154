package discoverer_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	discoveryclient "k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/discovery"
	"github.com/ec2guard/ec2guard/test/harness/awsemu"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// TestDiscovererBinary runs cmd/discoverer as a process — flags, manager, leader election,
// probes, metrics, signal handling — against envtest and moto, and checks that it publishes an
// Upstream's instances (as a headless Service) and shuts down cleanly on SIGTERM. The OpenReports
// CRD is removed first, as in a cluster where nobody installed it: the discoverer keeps
// discovering and publishing, says once per interval why it writes no reports, and sets
// ec2guard_discoverer_reports_available to 0.
func TestDiscovererBinary(t *testing.T) {
	moto := awsemu.Start(t)
	env := k8senv.Start(t, k8senv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	removeReportsCRD(t, ctx, env)

	bin := binproc.Build(t, "discoverer")

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
	createAndApply(t, ctx, env, up, secret)

	metricsAddr, probeAddr := binproc.FreeAddr(t), binproc.FreeAddr(t)
	p := binproc.StartConfig(t, binproc.Config{Bin: bin, StopTimeout: time.Minute, Args: []string{
		"--kubeconfig", env.KubeconfigPath, "--aws-endpoint", moto.Endpoint(), "--interval", "2s",
		"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr,
		"--leader-election-namespace", "default", "--log-format", "text", "--iam-audit=false"}})
	started := time.Now()
	logs := func() string {
		s, err := p.Log()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Wait (bounded) for the slices: the process reports nothing else to wait on.
	var got []string
	poll.Until(t, 3*time.Minute, "the slices of smoke", func() (bool, string) {
		var l discoveryv1.EndpointSliceList
		if err := env.Client.List(ctx, &l, client.InNamespace("default"),
			client.MatchingLabels{discoveryv1.LabelServiceName: discovery.ServiceName("smoke")}); err != nil {
			return false, err.Error()
		}
		got = got[:0]
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				got = append(got, e.Addresses[0])
			}
		}
		return len(got) == len(insts) || p.Exited(), fmt.Sprint(got)
	})
	if p.Exited() {
		t.Fatalf("discoverer exited: %v", p.ExitErr())
	}
	for _, in := range insts {
		if !strings.Contains(strings.Join(got, " "), in.PrivateIP) {
			t.Fatalf("published %v, want the private IPs of %d instances (missing %s)", got, len(insts), in.PrivateIP)
		}
	}

	var svc corev1.Service
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: discovery.ServiceName("smoke")}, &svc); err != nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("smoke's Service: %v, clusterIP %q (want headless by default)", err, svc.Spec.ClusterIP)
	}
	// A few more intervals without the CRD: still running, one line per interval at most.
	select {
	case <-p.Done():
		t.Fatalf("discoverer exited without the OpenReports CRD: %v", p.ExitErr())
	case <-time.After(3 * 2 * time.Second):
	}
	elapsed := time.Since(started)
	if n := strings.Count(logs(), "cannot write consistency reports"); n < 1 || n > int(elapsed/(2*time.Second))+2 {
		t.Errorf("%d log lines about the missing OpenReports CRD in %s with --interval 2s; want at least 1 and at most one per interval", n, elapsed.Round(time.Second))
	}

	if code, body := httpGet(t, "http://"+probeAddr+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, body := httpGet(t, "http://"+metricsAddr+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, `ec2guard_discoverer_aws_calls_total{api="ec2:DescribeInstances",result="OK"}`) ||
		!strings.Contains(body, `ec2guard_discoverer_upstream_endpoints{namespace="default",upstream="smoke"} 3`) ||
		!strings.Contains(body, "ec2guard_discoverer_reports_available 0") {
		t.Errorf("/metrics lacks the discoverer's metrics: %d\n%s", code, body)
	}

	if err := p.Stop(); err != nil {
		t.Errorf("discoverer: %v", err)
	}
	if out := logs(); strings.Contains(out, "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYAB") {
		t.Error("the discoverer logged the secret access key")
	} else if !strings.Contains(out, "discoverer stopped") {
		t.Errorf("no clean stop in the logs:\n%s", out)
	}
}

// removeReportsCRD deletes the OpenReports CRD that the harness installs and waits until the API
// server no longer serves openreports.io/v1alpha1.
func removeReportsCRD(t *testing.T, ctx context.Context, env *k8senv.Env) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "reports.openreports.io"}}
	if err := env.Client.Delete(ctx, crd); err != nil {
		t.Fatalf("delete the OpenReports CRD: %v", err)
	}
	dc, err := discoveryclient.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "the OpenReports CRD to be no longer served after its deletion", func() (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(crd), &apiextensionsv1.CustomResourceDefinition{})
		_, derr := dc.ServerResourcesForGroupVersion("openreports.io/v1alpha1")
		return apierrors.IsNotFound(err) && derr != nil, fmt.Sprintf("%v / %v", err, derr)
	})
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
