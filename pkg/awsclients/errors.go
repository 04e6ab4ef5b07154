package awsclients

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/aws/smithy-go"
	"k8s.io/apimachinery/pkg/types"
)

// invalidKeyCodes are the AWS error codes that mean the access key itself
// is not valid (unknown or deleted key id, wrong secret key, expired token).
var invalidKeyCodes = map[string]bool{
	"InvalidClientTokenId":        true, // STS, IAM: unknown or deleted key id
	"AuthFailure":                 true, // EC2's name for the same
	"SignatureDoesNotMatch":       true, // wrong secret access key
	"UnrecognizedClientException": true,
	"ExpiredToken":                true, // temporary credentials past expiry
	"ExpiredTokenException":       true,
}

func invalidKeyCode(err error) (string, bool) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && invalidKeyCodes[apiErr.ErrorCode()] {
		return apiErr.ErrorCode(), true
	}
	return "", false
}

func apiErrorCode(err error) (code, message string) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	return "", ""
}

// IsInvalidCredentials reports whether err says the access key is not valid.
func IsInvalidCredentials(err error) bool {
	var ic *InvalidCredentialsError
	if errors.As(err, &ic) {
		return true
	}
	_, ok := invalidKeyCode(err)
	return ok
}

// InvalidCredentialsError says AWS rejected the access key (unknown, deleted
// or deactivated key id, wrong secret key, expired session). Its message
// shows the key id masked and never the secret key.
type InvalidCredentialsError struct {
	// Secret is the secret the key came from; zero for the pod's default
	// credential chain.
	Secret types.NamespacedName
	// MaskedKeyID is the access key id masked (AKIA****MPLE); empty for the
	// default chain.
	MaskedKeyID string
	// Code is the AWS error code.
	Code string
	Err  error
}

func (e *InvalidCredentialsError) Error() string {
	what := "the access key in secret " + e.Secret.String()
	if e.Secret == (types.NamespacedName{}) {
		what = "the access key of the pod's default AWS credentials"
	}
	key := ""
	if e.MaskedKeyID != "" {
		key = " " + e.MaskedKeyID
	}
	return fmt.Sprintf("%s is not valid (key%s, AWS error %s)", what, key, e.Code)
}

func (e *InvalidCredentialsError) Unwrap() error { return e.Err }

// AssumeRoleError says sts:AssumeRole on the Upstream's roleArn failed with
// valid base credentials (AccessDenied: the identity may not assume it or the
// role's trust policy does not trust it; NoSuchEntity-like: no such role).
type AssumeRoleError struct {
	RoleARN string
	Source  string
	Code    string
	Message string // AWS's message (names principal and role, no secrets)
	Err     error
}

func (e *AssumeRoleError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("cannot assume role %s with %s: %v", e.RoleARN, e.Source, e.Err)
	}
	return fmt.Sprintf("cannot assume role %s with %s: %s: %s", e.RoleARN, e.Source, e.Code, e.Message)
}

func (e *AssumeRoleError) Unwrap() error { return e.Err }

// sessionNameInvalid matches characters AWS does not allow in a role session
// name ([\w+=,.@-], 2 to 64 characters).
var sessionNameInvalid = regexp.MustCompile(`[^\w+=,.@-]`)

const maxSessionName = 64

// SessionName is the stable role session name for credentials from secret
// (ns/name): ec2guard-<ns>-<name>, sanitised to AWS's rules; names longer
// than 64 characters keep a hash suffix so they stay distinct. The default
// chain (zero secret) gets "ec2guard".
func SessionName(secret types.NamespacedName) string {
	if secret == (types.NamespacedName{}) {
		return "ec2guard"
	}
	return SanitizeSessionName("ec2guard-" + secret.Namespace + "-" + secret.Name)
}

// SanitizeSessionName makes s a valid role session name.
func SanitizeSessionName(s string) string {
	out := sessionNameInvalid.ReplaceAllString(s, "-")
	for len(out) < 2 {
		out += "-"
	}
	if len(out) > maxSessionName {
		sum := sha256.Sum256([]byte(s))
		suffix := hex.EncodeToString(sum[:])[:8]
		out = out[:maxSessionName-len(suffix)-1] + "-" + suffix
	}
	return out
}
