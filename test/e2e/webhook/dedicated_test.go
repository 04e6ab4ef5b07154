package webhook_test

import (
	"strings"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/test/harness/poll"
)

// dedicatedAccount: an Upstream without filters using allowed credentials is warned about
// (EC2G601) and annotated permissive-credentials-no-filters, until the Secret's owner states a
// dedicated account with ec2guard.io/dedicated-account: "true"; then it is created without that
// warning and annotated restrictive-credentials-no-filters. Runs after fixedPolicyCreated (the
// secret holds the allowed credentials).
func (x *e2e) dedicatedAccount(t *testing.T) {
	const file = "testdata/no-filters-upstream.yaml"
	stdout, stderr, err := x.kubectl("apply", "-f", file)
	if err != nil {
		t.Fatalf("no filters: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "created") || !strings.Contains(stderr, "EC2G601") {
		t.Errorf("no filters, plain secret: stdout %q, stderr %q; want created with an EC2G601 warning", stdout, stderr)
	}
	if got := ec2guardAnnotations(x.get(t, "gloo-system", "ec2-no-filters"))[admission.AnnotationConsistency]; got != string(policycheck.PermissiveCredentialsNoFilters) {
		t.Errorf("plain secret: consistency %s", got)
	}
	if _, _, err := x.kubectl("delete", "-f", file); err != nil {
		t.Fatal(err)
	}

	if _, stderr, err := x.kubectl("annotate", "secret", "-n", "default", "gloo-tag-group1", ec2.AnnotationSecretDedicatedAccount+"=true"); err != nil {
		t.Fatalf("annotate the secret: %v\n%s", err, stderr)
	}
	defer func() {
		if _, stderr, err := x.kubectl("annotate", "secret", "-n", "default", "gloo-tag-group1", ec2.AnnotationSecretDedicatedAccount+"-"); err != nil {
			t.Errorf("remove the annotation: %v\n%s", err, stderr)
		}
	}()
	// The webhook sees the new secret version through its informer a moment later.
	poll.Until(t, syncTimeout, "the webhook to see the dedicated-account statement", func() (bool, string) {
		_, stderr, err := x.kubectl("apply", "--dry-run=server", "-f", file)
		return err == nil && !strings.Contains(stderr, "EC2G601"), stderr
	})
	stdout, stderr, err = x.kubectl("apply", "-f", file)
	// EC2G112 (no filters) is the spec's own warning, which knows no secret; EC2G601 is gone.
	if err != nil || !strings.Contains(stdout, "created") || strings.Contains(stderr, "EC2G601") || !strings.Contains(stderr, "EC2G112") {
		t.Fatalf("dedicated account: %v, stdout %q, stderr %q; want created with EC2G112 and without EC2G601", err, stdout, stderr)
	}
	if got := ec2guardAnnotations(x.get(t, "gloo-system", "ec2-no-filters"))[admission.AnnotationConsistency]; got != string(policycheck.RestrictiveCredentialsNoFilters) {
		t.Errorf("dedicated account: consistency %s", got)
	}
	if _, _, err := x.kubectl("delete", "-f", file); err != nil {
		t.Fatal(err)
	}
}
