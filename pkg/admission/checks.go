package admission

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// One function per rule group. Each returns the problems it found (nil when the check passes);
// the validating handler applies the check's enforcement action and counts the results.

// checkSpec runs pkg/ec2's spec rules.
func checkSpec(ctx context.Context, u *ec2.Upstream) []Problem {
	var out []Problem
	for _, f := range u.CheckContext(ctx) {
		out = append(out, problemFromFinding(codes.CheckSpec, f))
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
			return ec2.Credentials{}, []Problem{newProblem(codes.SecretNotWatched, field, ref, strings.Join(nw.Namespaces, ", "))}
		}
		return ec2.Credentials{}, []Problem{newProblem(codes.SecretUnreadable, field, ref, readErr)}
	}
	creds, findings := u.CheckSecret(s, ec2.SeverityError)
	var out []Problem
	for _, f := range findings {
		out = append(out, problemFromFinding(codes.CheckSecret, f))
	}
	return creds, out
}
