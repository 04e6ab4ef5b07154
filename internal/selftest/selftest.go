// Package selftest checks an installed ec2guard from inside the cluster (the chart's `helm test`
// hook): a server-side dry run of an EC2 Upstream whose secretRef names a Secret that does not
// exist must come back with ec2guard's verdict (EC2G301 from the validating webhook). Nothing is
// stored. Any other outcome — admitted, refused by something else, the webhook unreachable — is
// an error saying what happened.
package selftest

import (
	"context"
	"errors"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// Verdict markers.
const (
	// ExpectedCode is the code of a missing Secret.
	ExpectedCode = string(codes.SecretNotFound)
	// WebhookName is the validating webhook of the chart.
	WebhookName = "validate-upstream.ec2guard.io"
	// MissingSecret is the Secret name the probe Upstream references; it must not exist.
	MissingSecret = "ec2guard-selftest-no-such-secret"
)

// Probe is the EC2 Upstream sent (dry run) in namespace.
func Probe(namespace string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
		"metadata": map[string]any{"namespace": namespace, "generateName": "ec2guard-selftest-"},
		"spec": map[string]any{"awsEc2": map[string]any{
			"region":    "us-east-1",
			"secretRef": map[string]any{"name": MissingSecret, "namespace": namespace},
		}},
	}}
}

// Run sends the probe with c and checks the verdict.
func Run(ctx context.Context, c client.Client, namespace string) error {
	if namespace == "" {
		return errors.New("selftest: a namespace is needed")
	}
	err := c.Create(ctx, Probe(namespace), &client.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return fmt.Errorf("selftest: an EC2 Upstream referencing the missing Secret %s/%s was admitted: ec2guard did not check it (webhook not installed, namespace %s excluded, or enforcement off)", namespace, MissingSecret, namespace)
	case strings.Contains(err.Error(), ExpectedCode):
		return nil
	case strings.Contains(err.Error(), "failed calling webhook"):
		return fmt.Errorf("selftest: the API server could not call ec2guard: %w", err)
	default:
		return fmt.Errorf("selftest: want ec2guard's %s verdict, got: %w", ExpectedCode, err)
	}
}
