package ec2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

const (
	exampleKeyID = "AKIAIOSFODNN7EXAMPLE"
	exampleToken = "FwoGZXIvYXdzEXAMPLETOKENvalue0123456789abcdefSESSION"
)

// exampleSecret is AWS's documentation example secret access key, read from the seed secret in
// testdata so that no secret-shaped value is written in source.
var exampleSecret = secretKeyFromManifest("testdata/seed-secret.yaml")

// secretKeyFromManifest returns the aws_secret_access_key value of a Secret manifest.
func secretKeyFromManifest(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(fmt.Sprintf("test data: %v", err))
	}
	m := regexp.MustCompile(`(?m)^\s*aws_secret_access_key:\s*(\S+)\s*$`).FindSubmatch(b)
	if m == nil {
		panic(fmt.Sprintf("test data: no aws_secret_access_key in %s", path))
	}
	return string(m[1])
}

func secretWith(data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gloo-tag-group1", Namespace: "default"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestParseSecretSeedManifest(t *testing.T) {
	var s corev1.Secret
	if err := yaml.Unmarshal(readTestdata(t, "seed-secret.yaml"), &s); err != nil {
		t.Fatal(err)
	}
	creds, fs := ParseSecret(&s)
	if len(fs) != 0 {
		t.Fatalf("seed secret has findings:\n%s", dump(fs))
	}
	if creds.AccessKeyID != exampleKeyID || creds.SecretAccessKey() != exampleSecret || creds.SessionToken() != "" {
		t.Errorf("creds = %v", creds)
	}
	if creds.Source.String() != "default/gloo-tag-group1" {
		t.Errorf("source = %s", creds.Source)
	}
}

func TestParseSecretRules(t *testing.T) {
	cases := []struct {
		name string
		data map[string]string
		want []Code // exactly these codes
	}{
		{"valid long-term", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: exampleSecret}, nil},
		{"valid temporary", map[string]string{SecretKeyAccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretKeySecretAccessKey: exampleSecret, SecretKeySessionToken: exampleToken}, nil},
		{"EC2G302 no id", map[string]string{SecretKeySecretAccessKey: exampleSecret}, []Code{codes.SecretKeyMissing}},
		{"EC2G302 no secret", map[string]string{SecretKeyAccessKeyID: exampleKeyID}, []Code{codes.SecretKeyMissing}},
		{"EC2G302 empty secret object", map[string]string{}, []Code{codes.SecretKeyMissing, codes.SecretKeyMissing}},
		{"EC2G303 empty id", map[string]string{SecretKeyAccessKeyID: "", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.SecretKeyEmpty}},
		{"EC2G303 empty secret", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: ""}, []Code{codes.SecretKeyEmpty}},
		{"EC2G304 lower case id", map[string]string{SecretKeyAccessKeyID: "akiaiosfodnn7example", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.AccessKeyIDShape}},
		{"EC2G304 short id", map[string]string{SecretKeyAccessKeyID: "AKIA123", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.AccessKeyIDShape}},
		{"EC2G304 user unique id", map[string]string{SecretKeyAccessKeyID: "AIDAJQABLZS4A3QDU576Q", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.AccessKeyIDShape}},
		{"EC2G305 newline in id", map[string]string{SecretKeyAccessKeyID: exampleKeyID + "\n", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.SecretWhitespace}},
		{"EC2G305 newline in secret", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: exampleSecret + "\n"}, []Code{codes.SecretWhitespace}},
		{"EC2G305 newline in token", map[string]string{SecretKeyAccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretKeySecretAccessKey: exampleSecret, SecretKeySessionToken: exampleToken + "\n"}, []Code{codes.SecretWhitespace}},
		{"EC2G306 ASIA without token", map[string]string{SecretKeyAccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.SessionTokenMissing}},
		{"EC2G307 AKIA with token", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: exampleSecret, SecretKeySessionToken: exampleToken}, []Code{codes.SessionTokenUnexpected}},
		{"EC2G308 swapped", map[string]string{SecretKeyAccessKeyID: exampleSecret, SecretKeySecretAccessKey: exampleKeyID}, []Code{codes.SecretKeysSwapped}},
		{"EC2G308 id in both", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: exampleKeyID}, []Code{codes.SecretKeysSwapped}},
		{"EC2G309 short secret", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: "tooShort"}, []Code{codes.SecretAccessKeyLength}},
		{"EC2G310 plain value under data", map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: "\xc2\x96\xa5\xba\xf2\x15\xd2\xd0\x8c"}, []Code{codes.SecretNotText}},
		{"EC2G310 binary id", map[string]string{SecretKeyAccessKeyID: "\x00\x01AKIA", SecretKeySecretAccessKey: exampleSecret}, []Code{codes.SecretNotText}},
		{"EC2G310 binary token", map[string]string{SecretKeyAccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretKeySecretAccessKey: exampleSecret, SecretKeySessionToken: "\xff\xfe"}, []Code{codes.SecretNotText}},
		{"EC2G304 secret key in id", map[string]string{SecretKeyAccessKeyID: exampleSecret, SecretKeySecretAccessKey: exampleSecret}, []Code{codes.AccessKeyIDShape}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, fs := ParseSecret(secretWith(tc.data))
			var got []Code
			for _, f := range fs {
				got = append(got, f.Code)
				if !strings.Contains(f.Message, "secret default/gloo-tag-group1") {
					t.Errorf("finding does not name the secret: %s", f)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("codes = %v, want %v\n%s", got, tc.want, dump(fs))
			}
			assertNoSecretLeak(t, tc.data)
		})
	}
}

func TestParseSecretStringDataWins(t *testing.T) {
	s := secretWith(map[string]string{SecretKeyAccessKeyID: "broken"})
	s.StringData = map[string]string{SecretKeyAccessKeyID: exampleKeyID, SecretKeySecretAccessKey: exampleSecret}
	creds, fs := ParseSecret(s)
	if len(fs) != 0 || creds.AccessKeyID != exampleKeyID {
		t.Errorf("creds %v findings\n%s", creds, dump(fs))
	}
}

func TestParseSecretMessagesNameKeyAndMask(t *testing.T) {
	_, fs := ParseSecret(secretWith(map[string]string{SecretKeyAccessKeyID: "ASIAIOSFODNN7EXAMPLE", SecretKeySecretAccessKey: exampleSecret}))
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "ASIA****MPLE") || !strings.Contains(fs[0].Message, SecretKeySessionToken) {
		t.Errorf("findings:\n%s", dump(fs))
	}
	_, fs = ParseSecret(secretWith(map[string]string{SecretKeySecretAccessKey: exampleSecret}))
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "key aws_access_key_id is missing") {
		t.Errorf("findings:\n%s", dump(fs))
	}
	_, fs = ParseSecret(secretWith(map[string]string{SecretKeyAccessKeyID: "AIDAJQABLZS4A3QDU576Q", SecretKeySecretAccessKey: exampleSecret}))
	if len(fs) != 1 || !strings.Contains(fs[0].Message, "IAM user's unique id") {
		t.Errorf("findings:\n%s", dump(fs))
	}
}

// renderFindings renders findings every way a caller might print them.
func renderFindings(fs Findings) string {
	var all strings.Builder
	for _, f := range fs {
		all.WriteString(f.String() + "\n" + f.FieldError().Error() + "\n")
		all.WriteString(fmt.Sprintf("%v %+v %#v\n", f, f, f))
	}
	return all.String()
}

// renderCredentials renders credentials every way a caller might print or log them.
func renderCredentials(t testing.TB, c Credentials) string {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "c", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "c", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	type wrapper struct {
		C   Credentials
		Ptr *Credentials
	}
	return strings.Join([]string{
		c.String(), c.GoString(), fmt.Sprintf("%v|%+v|%#v|%s|%q", c, c, c, c, c),
		fmt.Sprintf("%v|%+v|%#v", wrapper{c, &c}, wrapper{c, &c}, wrapper{c, &c}),
		fmt.Sprint([]Credentials{c}), buf.String(), string(js),
	}, "\n")
}

// disguise replaces a value by one of the same class for every rule (length, white space at the
// ends, access-key-id shape, first four characters when they are upper-case letters or digits) but
// with other characters, so that text appearing in both renderings is message text, not the value.
func disguise(v string) string {
	if !isText(v) {
		return strings.Repeat("\xff", len(v))
	}
	core := strings.TrimSpace(v)
	lead := v[:len(v)-len(strings.TrimLeftFunc(v, unicode.IsSpace))]
	trail := v[len(lead)+len(core):]
	if core == "" {
		return v
	}
	rs := []rune(core)
	keep := 0
	if len(rs) >= 4 && strings.IndexFunc(string(rs[:4]), func(r rune) bool { return !('A' <= r && r <= 'Z' || '0' <= r && r <= '9') }) < 0 {
		keep = 4
	}
	for i := keep; i < len(rs); i++ {
		switch r := rs[i]; {
		case unicode.IsSpace(r):
		case 'A' <= r && r <= 'Z':
			rs[i] = 'Q'
		case '0' <= r && r <= '9':
			rs[i] = '7'
		case 'a' <= r && r <= 'z':
			rs[i] = 'q'
		default:
			rs[i] = '#'
		}
	}
	return lead + string(rs) + trail
}

// leakedValues returns the values (8 characters or more, trimmed) that appear in real but not in
// benign, the rendering of the same inputs disguised.
func leakedValues(real, benign string, values ...string) []string {
	var out []string
	for _, v := range values {
		v = strings.TrimSpace(v)
		if len(v) >= 8 && strings.Contains(real, v) && !strings.Contains(benign, v) {
			out = append(out, v)
		}
	}
	return out
}

// assertNoSecretLeak parses a secret with data and fails if its secret access key, session token, or
// an access key id that is not shaped like one (maybe a secret in the wrong field) appears in any
// rendering of the findings or credentials.
func assertNoSecretLeak(t testing.TB, data map[string]string) {
	t.Helper()
	creds, fs := ParseSecret(secretWith(data))
	disguised := map[string]string{}
	for k, v := range data {
		disguised[k] = disguise(v)
	}
	dcreds, dfs := ParseSecret(secretWith(disguised))
	if len(fs) != len(dfs) {
		t.Fatalf("disguise changed the findings: %d vs %d\n%s---\n%s", len(fs), len(dfs), dump(fs), dump(dfs))
	}
	real := renderFindings(fs) + renderCredentials(t, creds)
	benign := renderFindings(dfs) + renderCredentials(t, dcreds)
	values := []string{data[SecretKeySecretAccessKey], data[SecretKeySessionToken]}
	if id := data[SecretKeyAccessKeyID]; !accessKeyIDRe.MatchString(strings.TrimSpace(id)) {
		values = append(values, id)
	}
	if leaked := leakedValues(real, benign, values...); len(leaked) > 0 {
		t.Errorf("secret values %q appear in:\n%s", leaked, real)
	}
}

func TestLeakDetectorDetects(t *testing.T) {
	// The detector itself must be able to fail.
	if got := leakedValues("message with "+exampleSecret[:21]+" inside", "message with ###", exampleSecret[:21]); len(got) != 1 {
		t.Fatalf("leak not detected: %v", got)
	}
	if got := leakedValues("key aws_secret_access_key is missing", "key aws_secret_access_key is missing", "aws_secret_access_key"); len(got) != 0 {
		t.Fatalf("message text reported as a leak: %v", got)
	}
}

func TestNoSecretInFindingsManyInputs(t *testing.T) {
	secrets := []string{exampleSecret, exampleSecret + "\n", " " + exampleSecret, "AKIAIOSFODNN7EXAMPLE", "short-secret-value",
		strings.Repeat("x", 41), "secret default/gloo-tag-group1-XYZ", "AKIA" + strings.Repeat("Z", 16) + "\n"}
	ids := []string{exampleKeyID, "", "AKIA123", exampleSecret, "ASIAIOSFODNN7EXAMPLE", "AIDAJQABLZS4A3QDU576Q", "aws_secret_access_key", "akiaiosfodnn7example\n"}
	tokens := []string{"", exampleToken, exampleToken + "\n", " "}
	for _, sk := range secrets {
		for _, id := range ids {
			for _, tok := range tokens {
				data := map[string]string{SecretKeyAccessKeyID: id, SecretKeySecretAccessKey: sk}
				if tok != "" {
					data[SecretKeySessionToken] = tok
				}
				assertNoSecretLeak(t, data)
			}
		}
	}
}

func TestCredentialsRedaction(t *testing.T) {
	c := NewCredentials(exampleKeyID, exampleSecret, exampleToken, types.NamespacedName{Namespace: "default", Name: "s"})
	if r := renderCredentials(t, c); strings.Contains(r, exampleSecret) || strings.Contains(r, exampleToken) || strings.Contains(r, "EXAMPLEKEY") {
		t.Errorf("credentials rendering shows a secret:\n%s", r)
	}
	if got := c.String(); !strings.Contains(got, "AKIA****MPLE") || !strings.Contains(got, "default/s") {
		t.Errorf("String = %q", got)
	}
	if got := MaskAccessKeyID(exampleSecret); strings.Contains(got, "EXAMPLE") {
		t.Errorf("MaskAccessKeyID(secret-shaped) = %q", got)
	}
	var zero Credentials
	if zero.SecretAccessKey() != "" || zero.SessionToken() != "" || zero.String() == "" {
		t.Error("zero Credentials")
	}
}

func TestCredentialsProvider(t *testing.T) {
	c := NewCredentials(exampleKeyID, exampleSecret, "", types.NamespacedName{Namespace: "default", Name: "s"})
	var p aws.CredentialsProvider = c
	got, err := p.Retrieve(context.Background())
	if err != nil || got.AccessKeyID != exampleKeyID || got.SecretAccessKey != exampleSecret || got.SessionToken != "" {
		t.Errorf("Retrieve = %+v, %v", got.Source, err)
	}
	_, err = NewCredentials(exampleKeyID, "", "", types.NamespacedName{Namespace: "default", Name: "s"}).Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "default/s") {
		t.Errorf("incomplete credentials: err = %v", err)
	}
}

func TestCheckSecretOnUpstream(t *testing.T) {
	u, err := DecodeYAML(readTestdata(t, "seed-upstream-demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, fs := u.CheckSecret(nil, SeverityWarning)
	if len(fs) != 1 || fs[0].Code != codes.SecretNotFound || fs[0].Severity != SeverityWarning || fs[0].Field != "spec.upstreamSpec.awsEc2.secretRef" {
		t.Errorf("missing secret:\n%s", dump(fs))
	}
	_, fs = u.CheckSecret(nil, SeverityError)
	if !fs.HasErrors() || !strings.Contains(fs[0].String(), "secret default/gloo-tag-group1 not found") {
		t.Errorf("missing secret (error):\n%s", dump(fs))
	}
	_, fs = u.CheckSecret(secretWith(map[string]string{SecretKeyAccessKeyID: exampleKeyID}), SeverityError)
	if len(fs) != 1 || fs[0].Field != "spec.upstreamSpec.awsEc2.secretRef" || fs[0].Code != codes.SecretKeyMissing {
		t.Errorf("bad secret:\n%s", dump(fs))
	}
	u.Spec.SecretRef = nil
	if _, fs := u.CheckSecret(nil, SeverityError); len(fs) != 0 {
		t.Errorf("no secretRef: %v", fs)
	}
}
