package chart_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// TestReportsCRDInstall: in a cluster without the OpenReports CRDs, reports.installCRDs=true
// installs both, established, and the discoverer's ServiceAccount can then write a Report; helm
// uninstall keeps them (other tools' reports survive).
func TestReportsCRDInstall(t *testing.T) {
	h := newHelm(t)
	k8senv.RequireEnv(t, k8senv.KubectlEnv)
	env := k8senv.Start(t, k8senv.Options{})
	ctx := context.Background()
	// k8senv installs the Report CRD for every test: remove it to start from a fresh cluster.
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "reports.openreports.io"}}
	if err := env.Client.Delete(ctx, crd); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	poll.UntilNil(t, time.Minute, "the Report CRD to be gone", func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(crd), &apiextensionsv1.CustomResourceDefinition{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("CRD still there: %v", err)
	})
	for _, ns := range []string{releaseNamespace, "team-a"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	helmOn := func(args ...string) {
		t.Helper()
		if out, _, err := h.run(append(args, "--kubeconfig", env.KubeconfigPath, "--namespace", releaseNamespace)...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	helmOn("install", releaseName, h.chart, "-f", valuesFile(t, map[string]any{"reports": map[string]any{"installCRDs": true}}))
	for _, name := range []string{"reports.openreports.io", "clusterreports.openreports.io"} {
		poll.UntilNil(t, time.Minute, "CRD "+name+" to be established", func() error {
			got := &apiextensionsv1.CustomResourceDefinition{}
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, got); err != nil {
				return err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("CRD %s not established", name)
		})
	}
	report := "apiVersion: openreports.io/v1alpha1\nkind: Report\nmetadata: {name: ec2guard-probe, namespace: team-a}\n" +
		"scope: {apiVersion: gloo.solo.io/v1, kind: Upstream, name: probe, namespace: team-a}\nsummary: {pass: 1}\nresults: []\n"
	as := "--as=system:serviceaccount:" + releaseNamespace + ":ec2guard-discoverer"
	// The RESTMapper of kubectl learns the new kinds from discovery; retry until it has.
	poll.UntilNil(t, time.Minute, "the discoverer's ServiceAccount to write a Report", func() error {
		out, stderr, err := env.KubectlWithInput(ctx, strings.NewReader(report), "apply", "-f", "-", as)
		if err != nil {
			return fmt.Errorf("%v: %s%s", err, out, stderr)
		}
		return nil
	})
	helmOn("uninstall", releaseName, "--wait")
	for _, name := range []string{"reports.openreports.io", "clusterreports.openreports.io"} {
		if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &apiextensionsv1.CustomResourceDefinition{}); err != nil {
			t.Errorf("CRD %s after helm uninstall: %v (want it kept)", name, err)
		}
	}
}
