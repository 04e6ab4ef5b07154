package ec2

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// Data keys of the Gloo AWS secret (what `glooctl create secret aws` writes).
const (
	SecretKeyAccessKeyID     = "aws_access_key_id"
	SecretKeySecretAccessKey = "aws_secret_access_key"
	SecretKeySessionToken    = "aws_session_token"
)

// SecretAccessKeyLength is the length of AWS secret access keys.
const SecretAccessKeyLength = 40

// accessKeyIDRe is the shape of an AWS access key id: AKIA (long-term IAM user key) or ASIA (temporary
// STS credentials) followed by 16 upper-case letters or digits (IAM "unique ID prefixes").
var accessKeyIDRe = regexp.MustCompile(`^(AKIA|ASIA)[A-Z0-9]{16}$`)

// uniqueIDRe is the shape of other IAM unique ids (AIDA…, AROA…): upper-case letters and digits only.
// Only for such values is the four-letter prefix named in a message.
var uniqueIDRe = regexp.MustCompile(`^A[A-Z0-9]{15,31}$`)

// otherIDPrefix names IAM unique-id prefixes that are not access key ids, to explain a mix-up.
func otherIDPrefix(prefix string) string {
	switch prefix {
	case "AIDA":
		return "an IAM user's unique id"
	case "AROA":
		return "an IAM role's unique id"
	case "AGPA":
		return "an IAM group's unique id"
	case "AIPA":
		return "an EC2 instance profile's unique id"
	case "ANPA":
		return "a managed policy's unique id"
	case "ANVA":
		return "a managed policy version's id"
	case "APKA":
		return "a public key id"
	case "ASCA":
		return "a certificate id"
	case "ACCA":
		return "a context-specific credential id"
	case "ABIA":
		return "an STS service bearer token id"
	case "AAGA":
		return "an action group id"
	}
	return ""
}

// Credentials are the AWS credentials read from a Gloo AWS secret. The secret access key and the
// session token are held unexported and never printed: String, GoString, LogValue and MarshalJSON
// show only the masked access key id and where the credentials came from.
type Credentials struct {
	// AccessKeyID is the access key id (not secret, but shown masked).
	AccessKeyID string
	// Source is the secret the credentials were read from.
	Source types.NamespacedName

	secret *sensitive
}

// sensitive is a pointer target so that fmt at any nesting depth prints an address, not the values.
type sensitive struct {
	secretAccessKey string
	sessionToken    string
}

// NewCredentials builds Credentials (for tests and for the default-chain/role layers).
func NewCredentials(accessKeyID, secretAccessKey, sessionToken string, source types.NamespacedName) Credentials {
	return Credentials{AccessKeyID: accessKeyID, Source: source, secret: &sensitive{secretAccessKey: secretAccessKey, sessionToken: sessionToken}}
}

// SecretAccessKey returns the secret access key. Never log or print it.
func (c Credentials) SecretAccessKey() string {
	if c.secret == nil {
		return ""
	}
	return c.secret.secretAccessKey
}

// SessionToken returns the session token ("" for long-term keys). Never log or print it.
func (c Credentials) SessionToken() string {
	if c.secret == nil {
		return ""
	}
	return c.secret.sessionToken
}

// Retrieve implements aws.CredentialsProvider with these static credentials, so they can be given to
// an AWS SDK client (wrap them in aws.NewCredentialsCache as usual).
func (c Credentials) Retrieve(context.Context) (aws.Credentials, error) {
	if c.AccessKeyID == "" || c.SecretAccessKey() == "" {
		return aws.Credentials{}, fmt.Errorf("AWS credentials from secret %s are incomplete (%s or %s empty)", c.Source, SecretKeyAccessKeyID, SecretKeySecretAccessKey)
	}
	return aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey(),
		SessionToken:    c.SessionToken(),
		Source:          "ec2guard secret " + c.Source.String(),
	}, nil
}

// MaskedAccessKeyID returns the access key id masked, e.g. AKIA****MPLE.
func (c Credentials) MaskedAccessKeyID() string { return MaskAccessKeyID(c.AccessKeyID) }

// String implements fmt.Stringer without secret values.
func (c Credentials) String() string {
	tok := "no session token"
	if c.SessionToken() != "" {
		tok = "with session token"
	}
	return fmt.Sprintf("AWS credentials %s from secret %s (%s, secret key redacted)", c.MaskedAccessKeyID(), c.Source, tok)
}

// GoString implements fmt.GoStringer without secret values.
func (c Credentials) GoString() string {
	return fmt.Sprintf("ec2.Credentials{AccessKeyID: %q, Source: %q, SecretAccessKey: \"[redacted]\", SessionToken: %q}",
		c.MaskedAccessKeyID(), c.Source.String(), redactedOrEmpty(c.SessionToken()))
}

// LogValue implements slog.LogValuer without secret values.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("access_key_id", c.MaskedAccessKeyID()),
		slog.String("secret", c.Source.String()),
		slog.Bool("session_token", c.SessionToken() != ""),
	)
}

// MarshalJSON implements json.Marshaler without secret values.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"accessKeyId":%q,"secret":%q,"sessionToken":%t}`,
		c.MaskedAccessKeyID(), c.Source.String(), c.SessionToken() != "")), nil
}

func redactedOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MaskAccessKeyID shows the first and last four characters of an access key id (AKIA****MPLE). A
// value that is not shaped like an access key id may be a secret pasted into the wrong key, so
// nothing of it is shown.
func MaskAccessKeyID(id string) string {
	if !accessKeyIDRe.MatchString(id) {
		return fmt.Sprintf("(%d characters, not shown)", utf8.RuneCountInString(id))
	}
	return id[:4] + "****" + id[len(id)-4:]
}

// ParseSecret reads Gloo AWS credentials from a Secret (data, or stringData as in manifests read
// offline; stringData wins like in the API server) and checks them. Every finding names the secret and
// the key, never a value. Credentials are returned even with findings (possibly incomplete). Findings
// have no Field; CheckSecret places them on an Upstream's secretRef.
func ParseSecret(s *corev1.Secret) (Credentials, Findings) {
	if s == nil {
		return Credentials{}, Findings{newFinding(codes.SecretNotFound, nil, field.ErrorTypeNotFound, nil, "(none)", "not found", "NAME", "NS")}
	}
	src := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	get := func(k string) (string, bool) {
		if v, ok := s.StringData[k]; ok {
			return v, true
		}
		v, ok := s.Data[k]
		return string(v), ok
	}
	id, idOK := get(SecretKeyAccessKeyID)
	sk, skOK := get(SecretKeySecretAccessKey)
	tok, tokOK := get(SecretKeySessionToken)
	creds := NewCredentials(id, sk, tok, src)

	var out Findings
	add := func(c Code, t field.ErrorType, args ...any) {
		out = append(out, newFinding(c, nil, t, nil, append([]any{src}, args...)...))
	}
	for _, k := range []struct {
		key string
		ok  bool
		val string
	}{{SecretKeyAccessKeyID, idOK, id}, {SecretKeySecretAccessKey, skOK, sk}} {
		switch {
		case !k.ok:
			add(codes.SecretKeyMissing, field.ErrorTypeRequired, k.key)
		case k.val == "":
			add(codes.SecretKeyEmpty, field.ErrorTypeRequired, k.key)
		case !isText(k.val):
			add(codes.SecretNotText, field.ErrorTypeInvalid, k.key, len(k.val))
		case strings.TrimSpace(k.val) != k.val:
			add(codes.SecretWhitespace, field.ErrorTypeInvalid, k.key)
		}
	}
	if tokOK && tok != "" && !isText(tok) {
		add(codes.SecretNotText, field.ErrorTypeInvalid, SecretKeySessionToken, len(tok))
	} else if tokOK && tok != "" && strings.TrimSpace(tok) != tok {
		add(codes.SecretWhitespace, field.ErrorTypeInvalid, SecretKeySessionToken)
	}
	// Values that are not text were reported above; the shape rules look only at text.
	trimmedID, trimmedSK := "", ""
	if isText(id) {
		trimmedID = strings.TrimSpace(id)
	}
	if isText(sk) {
		trimmedSK = strings.TrimSpace(sk)
	}
	idShaped := accessKeyIDRe.MatchString(trimmedID)
	switch {
	case trimmedID == "":
		// reported above
	case !idShaped && accessKeyIDRe.MatchString(trimmedSK):
		add(codes.SecretKeysSwapped, field.ErrorTypeInvalid, MaskAccessKeyID(trimmedSK), " and "+SecretKeyAccessKeyID+" is not: the two look swapped")
	case !idShaped:
		add(codes.AccessKeyIDShape, field.ErrorTypeInvalid, describeBadAccessKeyID(trimmedID))
	}
	if idShaped && trimmedSK != "" && accessKeyIDRe.MatchString(trimmedSK) {
		add(codes.SecretKeysSwapped, field.ErrorTypeInvalid, MaskAccessKeyID(trimmedSK), ", not like a secret key")
	} else if trimmedSK != "" && !accessKeyIDRe.MatchString(trimmedSK) {
		if n := utf8.RuneCountInString(trimmedSK); n != SecretAccessKeyLength {
			add(codes.SecretAccessKeyLength, field.ErrorTypeInvalid, n, SecretAccessKeyLength)
		}
	}
	if idShaped {
		switch {
		case strings.HasPrefix(trimmedID, "ASIA") && strings.TrimSpace(tok) == "":
			add(codes.SessionTokenMissing, field.ErrorTypeRequired, MaskAccessKeyID(trimmedID))
		case strings.HasPrefix(trimmedID, "AKIA") && strings.TrimSpace(tok) != "":
			add(codes.SessionTokenUnexpected, field.ErrorTypeInvalid, MaskAccessKeyID(trimmedID))
		}
	}
	return creds, out
}

// isText reports whether a credential value is valid UTF-8 without control characters (other than
// white space, which has its own rule).
func isText(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

// describeBadAccessKeyID explains what is wrong with an access key id without showing it, except the
// first four characters when they are a known IAM unique-id prefix (not a secret).
func describeBadAccessKeyID(id string) string {
	n := utf8.RuneCountInString(id)
	if uniqueIDRe.MatchString(id) {
		if what := otherIDPrefix(id[:4]); what != "" {
			return fmt.Sprintf("starts with %s, the prefix of %s, not of an access key id (AKIA/ASIA)", id[:4], what)
		}
	}
	switch {
	case strings.HasPrefix(id, "AKIA") || strings.HasPrefix(id, "ASIA"):
		return fmt.Sprintf("has the prefix %s but is %d characters long or has characters other than A-Z and 0-9; access key ids are 20 characters", id[:4], n)
	case n == SecretAccessKeyLength:
		return fmt.Sprintf("is not an access key id (%d characters, the length of a secret access key — is the secret key in the wrong field?)", n)
	}
	return fmt.Sprintf("is not an access key id (%d characters, not shown); access key ids are AKIA or ASIA followed by 16 upper-case letters or digits", n)
}

// CheckSecret checks the Upstream's referenced secret and places the findings on its secretRef field.
// It reports nothing when there is no secretRef or its name is empty or invalid (Check reports those).
// s is nil when the secret does not exist: that is codes.SecretNotFound with severity missing (use
// SeverityWarning offline, when the secret is simply not among the inputs).
func (u *Upstream) CheckSecret(s *corev1.Secret, missing Severity) (Credentials, Findings) {
	ref, ok := u.SecretName()
	if !ok || ref.Name == "" || len(validation.IsDNS1123Subdomain(ref.Name)) > 0 {
		// No secretRef, or one that cannot name a secret (EC2G209/EC2G211 already say so).
		return Credentials{}, nil
	}
	p := u.Path().Child("secretRef")
	if s == nil {
		f := newFinding(codes.SecretNotFound, p, field.ErrorTypeNotFound, nil, ref, "not found", ref.Name, ref.Namespace)
		f.Severity = missing
		return Credentials{}, Findings{f}
	}
	creds, fs := ParseSecret(s)
	for i := range fs {
		fs[i].Field = p.String()
	}
	return creds, fs
}
