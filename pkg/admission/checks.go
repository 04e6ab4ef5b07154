package admission

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// One function per rule group. Each returns the problems it found (nil when the check passes);
// the validating handler applies the check's enforcement action and counts the results.

// checkSpec runs pkg/ec2's spec rules.
func checkSpec(ctx context.Context, u *ec2.Upstream) []Problem {
	var out []Problem
	for _, f := range u.CheckContext(ctx) {
		out = append(out, problemFromFinding(CheckSpec, f))
	}
	return out
}

// checkSecret checks the referenced Secret (s is nil when it does not exist; readErr is set when it
// could not be read) and returns its credentials when usable.
func checkSecret(u *ec2.Upstream, s *corev1.Secret, readErr error) (ec2.Credentials, []Problem) {
	field := u.Path().Child("secretRef").String()
	if readErr != nil {
		ref, _ := u.SecretName()
		if nw, ok := isNotWatched(readErr); ok {
			return ec2.Credentials{}, []Problem{{
				Check: CheckSecret, Code: string(CodeSecretNotWatched), Severity: ec2.SeverityError, Field: field,
				Message: fmt.Sprintf("secret %s is in a namespace ec2guard does not read Secrets from (%s)", ref, strings.Join(nw.Namespaces, ", ")),
				Fix:     "put the secret in one of those namespaces, or add its namespace to the webhook's --secret-namespaces",
			}}
		}
		return ec2.Credentials{}, []Problem{{
			Check: CheckSecret, Code: string(CodeSecretUnreadable), Severity: ec2.SeverityError, Field: field,
			Message: fmt.Sprintf("cannot read secret %s: %v", ref, readErr),
			Fix:     "retry; if it persists check the webhook's RBAC (get, list, watch secrets) and its logs",
		}}
	}
	creds, findings := u.CheckSecret(s, ec2.SeverityError)
	var out []Problem
	for _, f := range findings {
		out = append(out, problemFromFinding(CheckSecret, f))
	}
	return creds, out
}
