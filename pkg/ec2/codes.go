package ec2

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Code is a stable identifier of one validation rule. It starts every message the rule produces, so a
// user can search for it (docs/codes.md lists them all). Codes are never reused for another rule.
type Code string

// Decoding and shape rules (EC2G0xx).
const (
	// CodeWrongType: a field has the wrong JSON/YAML type (e.g. `port: "80"`, `filters: x`).
	CodeWrongType Code = "EC2G001"
	// CodeBothShapesDiffer: spec.awsEc2 and spec.upstreamSpec.awsEc2 are both present and differ.
	CodeBothShapesDiffer Code = "EC2G002"
	// CodeBothShapesSame: spec.awsEc2 and spec.upstreamSpec.awsEc2 are both present and equal.
	CodeBothShapesSame Code = "EC2G003"
	// CodeUnknownField: a field inside awsEc2 that Gloo does not know (usually a typo); Gloo rejects
	// the whole Upstream.
	CodeUnknownField Code = "EC2G004"
	// CodeFieldSpeltTwiceDiffer: a field is written under both its JSON name and its proto name
	// (`secretRef` and `secret_ref`) with different values.
	CodeFieldSpeltTwiceDiffer Code = "EC2G005"
	// CodeFieldSpeltTwiceSame: a field is written under both names with the same value.
	CodeFieldSpeltTwiceSame Code = "EC2G006"
)

// Bounds on the check itself (EC2G0xx).
const (
	// CodeMoreFindings: more findings than MaxReportedErrors/MaxReportedWarnings; the rest are counted.
	CodeMoreFindings Code = "EC2G007"
	// CodeCheckInterrupted: the check stopped because its context ended (request deadline).
	CodeCheckInterrupted Code = "EC2G008"
)

// Filter rules (EC2G1xx).
const (
	// CodeFilterKeyOrKVPair: a filter must set exactly one of key or kvPair.
	CodeFilterKeyOrKVPair Code = "EC2G101"
	// CodeFilterKeyEmpty: a filter's tag key is empty.
	CodeFilterKeyEmpty Code = "EC2G102"
	// CodeFilterKeyTooLong: a tag key is longer than 128 characters.
	CodeFilterKeyTooLong Code = "EC2G103"
	// CodeFilterValueTooLong: a tag value is longer than 256 characters.
	CodeFilterValueTooLong Code = "EC2G104"
	// CodeTooManyFilters: more than 50 filters.
	CodeTooManyFilters Code = "EC2G105"
	// CodeFilterConflict: the same tag key is required to have two different values (selects nothing).
	CodeFilterConflict Code = "EC2G106"
	// CodeFilterDuplicate: a filter is an exact duplicate of an earlier one.
	CodeFilterDuplicate Code = "EC2G107"
	// CodeFilterRedundantKey: a `key: K` filter is implied by a kvPair filter on K.
	CodeFilterRedundantKey Code = "EC2G108"
	// CodeFilterEmptyValue: a kvPair has an empty value (matches only an empty tag value).
	CodeFilterEmptyValue Code = "EC2G109"
	// CodeFilterKeyCaseCollision: two filter keys differ only in letter case.
	CodeFilterKeyCaseCollision Code = "EC2G110"
	// CodeFilterWhitespace: a tag key or value starts or ends with white space.
	CodeFilterWhitespace Code = "EC2G111"
	// CodeNoFilters: no filters; every running instance the credentials can list is selected.
	CodeNoFilters Code = "EC2G112"
	// CodeFilterKeyWildcard: a tag key contains `*` or `?`.
	CodeFilterKeyWildcard Code = "EC2G113"
)

// Region, role, port, secretRef and annotation rules (EC2G2xx).
const (
	// CodeRegionRequired: region is missing or empty.
	CodeRegionRequired Code = "EC2G201"
	// CodeRegionInvalid: region matches no AWS partition's region pattern (or is a global pseudo-region).
	CodeRegionInvalid Code = "EC2G202"
	// CodeRegionUnknown: region matches a partition pattern but is not a region the AWS SDK knows.
	CodeRegionUnknown Code = "EC2G203"
	// CodeRoleARNInvalid: roleArn is not an ARN.
	CodeRoleARNInvalid Code = "EC2G204"
	// CodeRoleARNNotRole: roleArn is an ARN but not an IAM role ARN.
	CodeRoleARNNotRole Code = "EC2G205"
	// CodeRoleARNPartition: roleArn is in another partition than the region.
	CodeRoleARNPartition Code = "EC2G206"
	// CodePortRange: port is not an integer 1–65535.
	CodePortRange Code = "EC2G207"
	// CodePortZero: port is written as 0, which Gloo treats as unset (default 80).
	CodePortZero Code = "EC2G208"
	// CodeSecretRefNameRequired: secretRef is present without a name.
	CodeSecretRefNameRequired Code = "EC2G209"
	// CodeSecretRefNamespaceDefaulted: secretRef has no namespace; the Upstream's namespace is assumed.
	CodeSecretRefNamespaceDefaulted Code = "EC2G210"
	// CodeSecretRefInvalidName: secretRef.name or namespace is not a valid Kubernetes name.
	CodeSecretRefInvalidName Code = "EC2G211"
	// CodePortTagInvalid: the ec2guard.io/port-tag annotation is not a usable tag key.
	CodePortTagInvalid Code = "EC2G212"
)

// Secret rules (EC2G3xx).
const (
	// CodeSecretNotFound: the referenced Secret does not exist (offline: is not among the inputs).
	CodeSecretNotFound Code = "EC2G301"
	// CodeSecretKeyMissing: a required data key is missing from the Secret.
	CodeSecretKeyMissing Code = "EC2G302"
	// CodeSecretKeyEmpty: a required data key is present but empty.
	CodeSecretKeyEmpty Code = "EC2G303"
	// CodeAccessKeyIDShape: aws_access_key_id is not shaped like an AWS access key id.
	CodeAccessKeyIDShape Code = "EC2G304"
	// CodeSecretWhitespace: a credential value has leading/trailing white space (often a newline).
	CodeSecretWhitespace Code = "EC2G305"
	// CodeSessionTokenMissing: a temporary (ASIA…) access key id without aws_session_token.
	CodeSessionTokenMissing Code = "EC2G306"
	// CodeSessionTokenUnexpected: a long-term (AKIA…) access key id with an aws_session_token.
	CodeSessionTokenUnexpected Code = "EC2G307"
	// CodeSecretKeysSwapped: the access key id and the secret access key look swapped.
	CodeSecretKeysSwapped Code = "EC2G308"
	// CodeSecretAccessKeyLength: the secret access key is not 40 characters long.
	CodeSecretAccessKeyLength Code = "EC2G309"
	// CodeSecretNotText: a credential value is binary, usually a plain value written under data:.
	CodeSecretNotText Code = "EC2G310"
)

// Severity says whether a finding rejects the Upstream (SeverityError) or only warns.
type Severity string

const (
	// SeverityError rejects the Upstream (under the default enforcement action).
	SeverityError Severity = "error"
	// SeverityWarning is reported but does not reject.
	SeverityWarning Severity = "warning"
)

// CodeInfo documents one code: what it checks and how to fix it. docs/codes.md is generated from
// Codes() (see TestCodesDoc).
type CodeInfo struct {
	Code     Code
	Severity Severity // the default severity
	Field    string   // the field it is reported on, relative to awsEc2 unless it starts with metadata/secret
	Rule     string   // what the rule checks
	Fix      string   // how to fix a violation
}

// codeTable is the single list of codes. It is a function, not a package variable, so nothing can
// change it at run time.
func codeTable() []CodeInfo {
	return []CodeInfo{
		{CodeWrongType, SeverityError, "any field", "A field has the wrong type (e.g. `port: \"80\"`, `filters: x`, `publicIp: \"yes\"`).", "Write the field with the type Gloo expects: strings quoted or plain, numbers and booleans unquoted, filters as a list."},
		{CodeBothShapesDiffer, SeverityError, "spec.upstreamSpec.awsEc2", "Both `spec.awsEc2` (Gloo >= 1.0) and legacy `spec.upstreamSpec.awsEc2` are present and they differ. ec2guard uses `spec.awsEc2`, like Gloo >= 1.0.", "Keep one shape; for Gloo >= 1.0 delete `spec.upstreamSpec`."},
		{CodeBothShapesSame, SeverityWarning, "spec.upstreamSpec.awsEc2", "Both shapes are present with the same content.", "Delete the legacy `spec.upstreamSpec` block."},
		{CodeUnknownField, SeverityError, "awsEc2.*", "A field Gloo does not know inside `awsEc2`, a filter, `kvPair` or `secretRef`. Gloo decodes Upstreams as protobuf JSON, which rejects unknown fields, so Gloo would not use the Upstream at all; read leniently, a misspelt `filters` would select every instance.", "Fix the spelling (the message suggests the closest known field) or remove the field."},
		{CodeFieldSpeltTwiceDiffer, SeverityError, "awsEc2.*", "A field is written twice, under its JSON name and its protobuf name (`awsEc2`/`aws_ec2`, `upstreamSpec`/`upstream_spec`, `secretRef`/`secret_ref`, `roleArn`/`role_arn`, `publicIp`/`public_ip`, `kvPair`/`kv_pair`), with different values. Gloo accepts either name and silently uses the JSON name; ec2guard reads the same value but rejects the ambiguity. Either name alone is accepted and means the same field; findings name it by its JSON name.", "Keep one spelling, preferably the JSON name (e.g. `secretRef`)."},
		{CodeFieldSpeltTwiceSame, SeverityWarning, "awsEc2.*", "A field is written under both its JSON name and its protobuf name, with the same value.", "Delete the protobuf-named copy (e.g. `secret_ref`)."},
		{CodeMoreFindings, SeverityError, "awsEc2", fmt.Sprintf("More findings than ec2guard reports for one Upstream (%d errors and %d warnings, each message at most %d bytes): the rest are counted by code in this finding. It is an error when any error was left out, a warning otherwise.", MaxReportedErrors, MaxReportedWarnings, MaxFindingMessageLength), "Fix the problems shown and check again."},
		{CodeCheckInterrupted, SeverityError, "awsEc2", "The check stopped before running every rule because its deadline passed (the admission request's timeout) or it was cancelled; the Upstream is not known to be valid.", "Retry; if it persists the object is too large to check in time (see EC2G105) or the webhook is overloaded."},
		{CodeFilterKeyOrKVPair, SeverityError, "filters[i]", "Each filter sets exactly one of `key` (tag key exists) or `kvPair` (tag key equals value).", "Keep `key: K` to require the tag, or `kvPair: {key: K, value: V}` to require its value — not both, not neither."},
		{CodeFilterKeyEmpty, SeverityError, "filters[i].key, filters[i].kvPair.key", "The tag key is empty; AWS tag keys have at least one character.", "Write the tag key."},
		{CodeFilterKeyTooLong, SeverityError, "filters[i].key, filters[i].kvPair.key", "The tag key is longer than 128 characters (the AWS limit), so no instance can carry it.", "Use the instance's real tag key (at most 128 characters)."},
		{CodeFilterValueTooLong, SeverityError, "filters[i].kvPair.value", "The tag value is longer than 256 characters (the AWS limit), so no instance can carry it.", "Use the instance's real tag value (at most 256 characters)."},
		{CodeTooManyFilters, SeverityError, "filters", "More than 50 filters: EC2 DescribeInstances accepts at most 50 filters per request (see the limits below) and an instance carries at most 50 user tags. Checked first; beyond the limit the other filter rules are not run, so the answer stays small and fast.", "Remove filters; use at most 50."},
		{CodeFilterConflict, SeverityError, "filters[i].kvPair.value", "The same tag key is required to have two different values; filters are ANDed, so no instance can match.", "Keep one value; to route to both values use two Upstreams."},
		{CodeFilterDuplicate, SeverityWarning, "filters[i]", "The filter is an exact duplicate of an earlier one.", "Delete the duplicate."},
		{CodeFilterRedundantKey, SeverityWarning, "filters[i].key", "`key: K` is implied by a `kvPair` on the same key.", "Delete the `key: K` filter."},
		{CodeFilterEmptyValue, SeverityWarning, "filters[i].kvPair.value", "The kvPair value is empty: it matches only instances whose tag has an empty value.", "To require the tag with any value use `key: K`; otherwise write the value."},
		{CodeFilterKeyCaseCollision, SeverityWarning, "filters[i]", "Two filter keys differ only in letter case. AWS compares keys case-sensitively, but Gloo's own EC2 plugin lowercases them, so Gloo and ec2guard can select different instances.", "Use one spelling, exactly as the instances are tagged."},
		{CodeFilterWhitespace, SeverityWarning, "filters[i].key, filters[i].kvPair.key, filters[i].kvPair.value", "A tag key or value starts or ends with white space; AWS compares exactly, so this is usually a typo.", "Remove the white space unless the tag really has it."},
		{CodeNoFilters, SeverityWarning, "filters", "No filters: the Upstream routes to every running instance the credentials can list in the region.", "Add filters, or make sure the credentials can only see the intended instances (separate account or region)."},
		{CodeFilterKeyWildcard, SeverityWarning, "filters[i].key, filters[i].kvPair.key", "The tag key contains `*` or `?`. ec2guard matches it literally, as AWS compares tag keys (in an EC2 `tag-key` filter value it would be a wildcard unless escaped).", "Check the key is really spelt with `*`/`?`; these are not wildcards here."},
		{CodeRegionRequired, SeverityError, "region", "The region is missing or empty.", "Set `region`, e.g. `region: us-east-1`."},
		{CodeRegionInvalid, SeverityError, "region", "The region matches no AWS partition's region pattern from the AWS SDK's partition metadata (or it is a global pseudo-region such as `aws-global`, or an availability zone).", "Use a region code such as `us-east-1` (the message suggests one when it can)."},
		{CodeRegionUnknown, SeverityWarning, "region", "The region matches a partition's pattern but is not among the regions the bundled AWS SDK knows (a new region, or a typo).", "Check the spelling; ignore if the region is newer than ec2guard's AWS SDK."},
		{CodeRoleARNInvalid, SeverityError, "roleArn", "`roleArn` is not an ARN.", "Use an IAM role ARN: `arn:aws:iam::123456789012:role/NAME`."},
		{CodeRoleARNNotRole, SeverityError, "roleArn", "`roleArn` is an ARN but not an IAM role ARN (service `iam`, no region, 12-digit account, resource `role/[path/]NAME`).", "Use the role's ARN; for an assumed-role session ARN use the role it came from."},
		{CodeRoleARNPartition, SeverityError, "roleArn", "`roleArn` is in another AWS partition than the region (e.g. an `aws-cn` role for `us-east-1`); STS cannot assume it there.", "Use a role in the region's partition or a region in the role's partition."},
		{CodePortRange, SeverityError, "port", "The port is not an integer 1–65535.", "Set `port` to the instances' service port, or remove it for the default 80."},
		{CodePortZero, SeverityWarning, "port", "`port: 0` is treated as unset by Gloo: the default 80 is used.", "Write `port: 80` or remove the field."},
		{CodeSecretRefNameRequired, SeverityError, "secretRef.name", "`secretRef` is present without a name.", "Set `secretRef.name` to the Gloo AWS secret, or remove `secretRef` to use the pod's own AWS identity."},
		{CodeSecretRefNamespaceDefaulted, SeverityWarning, "secretRef.namespace", "`secretRef` has no namespace; ec2guard assumes the Upstream's namespace, but Gloo looks the secret up by the namespace written in the reference.", "Set `secretRef.namespace` explicitly."},
		{CodeSecretRefInvalidName, SeverityError, "secretRef.name, secretRef.namespace", "The secret's name is not a valid Kubernetes object name (DNS subdomain) or the namespace not a valid namespace name (DNS label).", "Use the Secret's real name and namespace."},
		{CodePortTagInvalid, SeverityError, "metadata.annotations[ec2guard.io/port-tag]", "The `ec2guard.io/port-tag` annotation is empty or longer than 128 characters, so it cannot name a tag key.", "Set it to the tag key that carries each instance's port, or remove it."},
		{CodeSecretNotFound, SeverityError, "secretRef", "The referenced Secret does not exist. Offline (`ec2guard check`) a Secret that is not among the inputs is a warning.", "Create it with `glooctl create secret aws --name NAME --namespace NS ...`, or pass its manifest with `-f`."},
		{CodeSecretKeyMissing, SeverityError, "secretRef (secret data key)", "The Secret lacks `aws_access_key_id` or `aws_secret_access_key`.", "Recreate it with `glooctl create secret aws`, which writes both keys."},
		{CodeSecretKeyEmpty, SeverityError, "secretRef (secret data key)", "A credential key of the Secret is present but empty.", "Put the credential in the Secret."},
		{CodeAccessKeyIDShape, SeverityError, "secretRef (aws_access_key_id)", "`aws_access_key_id` is not an AWS access key id: `AKIA` (long-term) or `ASIA` (temporary) followed by 16 upper-case letters or digits. Other IAM unique-id prefixes (AIDA user, AROA role, …) are named in the message.", "Use the access key id of an IAM access key (shown in the IAM console or by `aws iam list-access-keys`)."},
		{CodeSecretWhitespace, SeverityError, "secretRef (secret data key)", "A credential value starts or ends with white space, usually a newline from `echo` piped to `base64`; AWS rejects the signature.", "Recreate the value without the newline (`echo -n`, or `glooctl create secret aws`)."},
		{CodeSessionTokenMissing, SeverityError, "secretRef (aws_session_token)", "A temporary access key id (`ASIA…`) is used without `aws_session_token`; AWS rejects it.", "Add `aws_session_token`, or use a long-term key (`AKIA…`)."},
		{CodeSessionTokenUnexpected, SeverityWarning, "secretRef (aws_session_token)", "A long-term access key id (`AKIA…`) comes with an `aws_session_token`; session tokens belong to temporary (`ASIA…`) keys.", "Remove `aws_session_token`, or put the matching temporary key id."},
		{CodeSecretKeysSwapped, SeverityError, "secretRef (secret data keys)", "The value of `aws_secret_access_key` is shaped like an access key id (or `aws_access_key_id` like a secret key): the two look swapped.", "Swap the two values."},
		{CodeSecretNotText, SeverityError, "secretRef (secret data key)", "A credential value is not text (invalid UTF-8 or control characters): usually a plain value written under `data:`, which Kubernetes base64-decodes into bytes.", "Write plain values under `stringData:`, or base64-encode them under `data:`."},
		{CodeSecretAccessKeyLength, SeverityWarning, "secretRef (aws_secret_access_key)", "The secret access key is not 40 characters long, the length of AWS secret access keys.", "Check the value was copied completely."},
	}
}

// Codes returns the documentation of every code, sorted by code.
func Codes() []CodeInfo {
	t := codeTable()
	sort.Slice(t, func(i, j int) bool { return t[i].Code < t[j].Code })
	return t
}

// codeIndex maps each code to its documentation. It is built once from codeTable, on first use,
// and only read after that (every finding looks its code up: rebuilding the table per finding
// was half the cost of checking a large object).
var codeIndex = sync.OnceValue(func() map[Code]CodeInfo {
	t := codeTable()
	m := make(map[Code]CodeInfo, len(t))
	for _, ci := range t {
		m[ci.Code] = ci
	}
	return m
})

// Info returns the documentation of c.
func (c Code) Info() (CodeInfo, bool) {
	ci, ok := codeIndex()[c]
	return ci, ok
}

// Finding is one result of a rule: an error or a warning with its code, the field path where the user
// wrote the offending value, what is wrong and how to fix it. A Finding never contains a secret value.
type Finding struct {
	Code     Code
	Severity Severity
	// Field is the path as field.Path renders it, e.g. `spec.awsEc2.filters[1]`.
	Field string
	// Message says what is wrong (without the code or the field).
	Message string
	// Fix says how to fix it; may be empty.
	Fix string
	// Type is the k8s field error type used when converting to a field.Error.
	Type field.ErrorType
	// BadValue is the offending value when it is safe to show (never a secret); nil otherwise.
	BadValue any
}

// String renders the finding as `CODE field: message (fix: ...)`.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(string(f.Code))
	b.WriteByte(' ')
	if f.Field != "" {
		b.WriteString(f.Field)
		b.WriteString(": ")
	}
	b.WriteString(f.Text())
	return b.String()
}

// Text is the message followed by the fix: `message; fix: ...` — without code and field.
func (f Finding) Text() string {
	if f.Fix == "" {
		return f.Message
	}
	return f.Message + "; fix: " + f.Fix
}

// FieldError converts the finding into a k8s field error whose Detail starts with the code.
func (f Finding) FieldError() *field.Error {
	t := f.Type
	if t == "" {
		t = field.ErrorTypeInvalid
	}
	bad := f.BadValue
	if bad == nil {
		bad = field.OmitValueType{}
	}
	return &field.Error{Type: t, Field: f.Field, BadValue: bad, Detail: string(f.Code) + " " + f.Text()}
}

// CodeOf returns the code at the start of a field error's Detail produced by this package.
func CodeOf(e *field.Error) (Code, bool) {
	if e == nil {
		return "", false
	}
	code, _, _ := strings.Cut(e.Detail, " ")
	if _, ok := Code(code).Info(); !ok {
		return "", false
	}
	return Code(code), true
}

// Findings is a list of findings in the order the rules produced them.
type Findings []Finding

// Errors returns the error-severity findings as a field.ErrorList.
func (fs Findings) Errors() field.ErrorList {
	var out field.ErrorList
	for _, f := range fs {
		if f.Severity == SeverityError {
			out = append(out, f.FieldError())
		}
	}
	return out
}

// Warnings returns the warning-severity findings.
func (fs Findings) Warnings() Findings {
	var out Findings
	for _, f := range fs {
		if f.Severity == SeverityWarning {
			out = append(out, f)
		}
	}
	return out
}

// HasErrors reports whether any finding is an error.
func (fs Findings) HasErrors() bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Has reports whether any finding has code c.
func (fs Findings) Has(c Code) bool {
	for _, f := range fs {
		if f.Code == c {
			return true
		}
	}
	return false
}

// newFinding builds a finding with the code's default severity.
func newFinding(c Code, path *field.Path, t field.ErrorType, bad any, msg, fix string) Finding {
	sev := SeverityError
	if ci, ok := c.Info(); ok {
		sev = ci.Severity
	}
	p := ""
	if path != nil {
		p = path.String()
	}
	return Finding{Code: c, Severity: sev, Field: p, Message: msg, Fix: fix, Type: t, BadValue: bad}
}
