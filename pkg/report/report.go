// Package report builds ec2guard's consistency reports — one OpenReports
// (openreports.io/v1alpha1) Report per EC2 Upstream, from the discoverer's audit — writes them to
// the cluster, and renders them as a table, JSON, Markdown or HTML. See docs/reports.md.
package report

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	openreports "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

// Report is an OpenReports Report (openreports.io/v1alpha1).
type Report = openreports.Report

// Identification of ec2guard's reports.
const (
	// Source is the report's and every result's source.
	Source = "ec2guard"
	// LabelManagedBy / ManagedBy mark the reports ec2guard writes.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "ec2guard"
	// LabelUpstream holds the Upstream's name (truncated with a hash when longer than a label value).
	LabelUpstream = "ec2guard.io/upstream"
	// NamePrefix prefixes every report name.
	NamePrefix = "ec2guard-"
	// Category of every result.
	Category = "EC2 Upstream"
)

// Checks: the Policy of each result.
const (
	CheckIAM             = "iam"
	CheckConsistency     = "consistency"
	CheckDiscovery       = "discovery"
	CheckOverlap         = "overlap"
	CheckCaseSensitivity = "case-sensitivity"
)

// Result values.
const (
	Pass  = openreports.Result("pass")
	Warn  = openreports.Result("warn")
	Fail  = openreports.Result("fail")
	Error = openreports.Result("error")
	Skip  = openreports.Result("skip")
)

// Property keys of the results.
const (
	PropRegion      = "region"
	PropPrincipal   = "principal"
	PropFilters     = "filters"
	PropMatched     = "matchedInstances"
	PropConsistency = "consistency"
	PropIAMDecision = "iamDecision"
	PropIAMSource   = "iamSource"
	PropIAMSources  = "iamSources"
	PropInstances   = "instances"
	PropCount       = "count"
	PropGroup       = "credentialGroup"
	PropStaleSince  = "staleSince"
	// PropRefusal is the code (EC2G701, EC2G702) of a discovery refused because the Upstream may
	// not use the credentials it names.
	PropRefusal = "refusal"
)

// GVK identification of the Upstream, the report's scope and owner.
const (
	upstreamAPIVersion = ec2.GlooGroup + "/v1"
	reportAPIVersion   = openreports.GroupName + "/v1alpha1"
	reportKind         = "Report"
)

// Input is what the discoverer knows about one EC2 Upstream after a refresh: its identity and
// spec (pkg/ec2, which holds no credential values — a secretRef is a name) and the audit it wrote
// into the ec2guard.io/discovered annotation. Credentials have no place here.
type Input struct {
	Upstream *ec2.Upstream
	UID      types.UID
	Status   discovered.Status
	// Now stamps the results (ignored by Equal).
	Now time.Time
}

// Name returns the report name of an Upstream: ec2guard-NAME, truncated with a hash suffix when
// longer than a Kubernetes object name (253).
func Name(upstream string) string { return limit(NamePrefix+upstream, 253) }

// UpstreamLabel returns the ec2guard.io/upstream label value of an Upstream (at most 63
// characters, truncated with a hash suffix).
func UpstreamLabel(upstream string) string { return limit(upstream, 63) }

func limit(s string, n int) string {
	if len(s) <= n {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	h := hex.EncodeToString(sum[:])[:10]
	head := strings.TrimRight(s[:n-len(h)-1], "-.")
	return head + "-" + h
}

// Build returns the Report of one Upstream. It is a pure function of in.
func Build(in Input) *Report {
	up := in.Upstream
	st := in.Status
	ts := metav1.Timestamp{Seconds: in.Now.Unix()}
	ref := corev1.ObjectReference{APIVersion: upstreamAPIVersion, Kind: ec2.UpstreamKind, Namespace: up.Namespace, Name: up.Name, UID: in.UID}
	f := false
	r := &Report{
		TypeMeta: metav1.TypeMeta{APIVersion: reportAPIVersion, Kind: reportKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(up.Name),
			Namespace: up.Namespace,
			Labels:    map[string]string{LabelManagedBy: ManagedBy, LabelUpstream: UpstreamLabel(up.Name)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: upstreamAPIVersion, Kind: ec2.UpstreamKind, Name: up.Name, UID: in.UID,
				Controller: &f, BlockOwnerDeletion: &f,
			}},
		},
		Source: Source,
		Scope:  &ref,
	}
	iam := discovered.IAMStatus{Source: verdict.SourceNone}
	if st.IAM != nil {
		iam = *st.IAM
	}
	common := map[string]string{
		PropRegion:      up.Spec.Region,
		PropPrincipal:   iam.Principal,
		PropFilters:     RenderFilters(up.Spec.Filters),
		PropMatched:     strconv.Itoa(st.Matched),
		PropConsistency: st.Consistency,
		PropIAMSource:   iam.Source,
		PropGroup:       st.Group,
	}
	results := []openreports.ReportResult{
		iamResult(iam),
		consistencyResult(up, iam, st.Consistency, common),
		discoveryResult(st),
		overlapResult(st),
		caseResult(up, st),
	}
	for i := range results {
		results[i].Source = Source
		results[i].Category = Category
		results[i].Timestamp = ts
		results[i].Subjects = []corev1.ObjectReference{ref}
		results[i].Severity = severity(results[i].Result)
		results[i].Description = Redact(results[i].Description)
		for k, v := range results[i].Properties {
			if v == "" {
				delete(results[i].Properties, k)
				continue
			}
			results[i].Properties[k] = Redact(v)
		}
	}
	r.Results = results
	r.Summary = Summarize(results)
	return r
}

// Summarize counts results by outcome.
func Summarize(results []openreports.ReportResult) openreports.ReportSummary {
	var s openreports.ReportSummary
	for _, res := range results {
		switch res.Result {
		case Pass:
			s.Pass++
		case Warn:
			s.Warn++
		case Fail:
			s.Fail++
		case Error:
			s.Error++
		default:
			s.Skip++
		}
	}
	return s
}

func severity(r openreports.Result) openreports.ResultSeverity {
	switch r {
	case Fail, Error:
		return "high"
	case Warn:
		return "medium"
	}
	return "info"
}

// RenderFilters renders an Upstream's filters as written in YAML, joined by "; " ("" for none).
func RenderFilters(fs []ec2.Filter) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.String())
	}
	return strings.Join(parts, "; ")
}

func iamResult(iam discovered.IAMStatus) openreports.ReportResult {
	res := openreports.ReportResult{Policy: CheckIAM, Rule: "ec2:DescribeInstances", Properties: map[string]string{
		PropPrincipal: iam.Principal, PropIAMDecision: iam.Decision, PropIAMSource: iam.Source, PropIAMSources: renderSources(iam.Sources),
	}}
	who := "the credentials"
	if iam.Principal != "" {
		who = iam.Principal
	}
	switch iam.Decision {
	case verdict.DecisionAllowed:
		res.Result = Pass
		res.Description = fmt.Sprintf("%s may call ec2:DescribeInstances (decided by %s).", who, iam.Source)
	case verdict.DecisionImplicitDeny, verdict.DecisionExplicitDeny:
		res.Result = Fail
		res.Description = fmt.Sprintf("%s may not call ec2:DescribeInstances: %s (decided by %s).%s", who, iam.Decision, iam.Source, reasons(iam.Sources))
	case "":
		res.Result = Skip
		res.Description = "Not audited: the Upstream was not discovered (see the discovery result)."
	default:
		res.Result = Error
		res.Description = "The IAM decision for ec2:DescribeInstances is unknown." + reasons(iam.Sources)
	}
	return res
}

func renderSources(ss []discovered.SourceDecision) string {
	parts := make([]string, 0, len(ss))
	for _, s := range ss {
		parts = append(parts, s.Source+"="+s.Decision)
	}
	return strings.Join(parts, ", ")
}

func reasons(ss []discovered.SourceDecision) string {
	var b strings.Builder
	for _, s := range ss {
		if s.Reason != "" {
			fmt.Fprintf(&b, " %s: %s.", s.Source, strings.TrimRight(s.Reason, "."))
		}
	}
	return b.String()
}

// tagScopingNote explains why IAM cannot make DescribeInstances credentials restrictive by tag.
const tagScopingNote = ` ec2:DescribeInstances supports no resource-level permissions: it is authorized against Resource "*", so a policy cannot restrict it by tag (ec2:ResourceTag) or instance ARN; "restrictive" credentials can only come from an account that holds only the intended instances, which the Secret's owner states with the annotation ec2guard.io/dedicated-account: "true". Scope by tag with the Upstream's filters.`

func consistencyResult(up *ec2.Upstream, iam discovered.IAMStatus, class string, props map[string]string) openreports.ReportResult {
	res := openreports.ReportResult{Policy: CheckConsistency, Rule: class, Properties: props, Result: Pass}
	tagScoping := triesTagScoping(iam)
	pinned := iam.RegionPinned != nil && *iam.RegionPinned
	switch policycheck.ConsistencyClass(class) {
	case policycheck.CredentialsDeny:
		res.Result = Fail
		res.Description = fmt.Sprintf("credentials-deny: the credentials cannot list instances in %s, so the Upstream discovers nothing. Fix: allow ec2:DescribeInstances on Resource \"*\", pin the region with aws:RequestedRegion or ec2:Region, and move tag scoping into the Upstream's filters.", up.Spec.Region)
		if tagScoping {
			res.Description += tagScopingNote
		}
		return res
	case policycheck.PermissiveCredentialsNoFilters:
		res.Result = Warn
		res.Description = "permissive-credentials-no-filters: the Upstream has no filters and the credentials are not restricted, so it routes to every running instance the credentials can see in " + up.Spec.Region + ". Add filters, or use credentials of a separate account or pinned to the region."
	case policycheck.PermissiveCredentialsDiscerningFilters:
		res.Description = "permissive-credentials-discerning-filters: the credentials see more instances than the filters select; the filters are the scope."
	case policycheck.RestrictiveCredentialsNoFilters:
		res.Description = "restrictive-credentials-no-filters: the Secret's owner states that the credentials' account holds only the intended instances (ec2guard.io/dedicated-account), so the credentials are the only scope; there are no filters."
	case policycheck.RestrictiveCredentialsDiscerningFilters:
		res.Description = "restrictive-credentials-discerning-filters: the Secret's owner states that the credentials' account holds only the intended instances (ec2guard.io/dedicated-account), and the filters select within what they see (the filters document the scope)."
	case "":
		res.Result = Skip
		res.Description = "Not classified: the Upstream was not audited (see the discovery result)."
		return res
	case verdict.ConsistencyUnknown:
		res.Result = Skip
		res.Description = "Not classified: the IAM decision is unknown (see the IAM result for why)."
		return res
	default:
		res.Result = Error
		res.Description = "Unknown consistency class " + strconv.Quote(class) + "."
		return res
	}
	if tagScoping || pinned || res.Result == Warn {
		res.Description += tagScopingNote
	}
	return res
}

// triesTagScoping reports whether a source's reason says the policy scoped DescribeInstances by
// tag or resource (the IAM engine's RESOURCE_MISMATCH and UNSUPPORTED_CONDITION_KEY findings).
func triesTagScoping(iam discovered.IAMStatus) bool {
	for _, s := range iam.Sources {
		l := strings.ToLower(s.Reason)
		for _, hint := range []string{"resourcetag", "resource-level", "aws:tagkeys", "arn:aws:ec2:"} {
			if strings.Contains(l, hint) {
				return true
			}
		}
	}
	return false
}

func discoveryResult(st discovered.Status) openreports.ReportResult {
	res := openreports.ReportResult{Policy: CheckDiscovery, Result: Pass, Properties: map[string]string{
		PropCount: strconv.Itoa(st.Count), PropMatched: strconv.Itoa(st.Matched), PropStaleSince: st.StaleSince,
	}}
	if st.Refusal != nil {
		res.Properties[PropRefusal] = st.Refusal.Code
	}
	switch {
	case st.Stale || st.LastError != "":
		res.Result = Error
		res.Description = "Discovery fails: " + st.LastError
		if st.Stale {
			res.Description += " The published endpoints are the last good ones"
			if st.StaleSince != "" {
				res.Description += ", listed before " + st.StaleSince
			}
			res.Description += "."
		}
	case st.Skipped > 0:
		res.Result = Warn
		var b strings.Builder
		fmt.Fprintf(&b, "%d of %d matched instances are not published:", st.Skipped, st.Matched)
		ids := make([]string, 0, len(st.SkippedInstances))
		for _, s := range st.SkippedInstances {
			fmt.Fprintf(&b, " %s (%s", s.InstanceID, s.Reason)
			if s.Detail != "" {
				b.WriteString(": " + s.Detail)
			}
			b.WriteString(");")
			ids = append(ids, s.InstanceID)
		}
		res.Description = strings.TrimSuffix(b.String(), ";") + "."
		res.Properties[PropInstances] = strings.Join(ids, ",")
	default:
		res.Description = fmt.Sprintf("%d matched instances, %d endpoints published.", st.Matched, st.Count)
	}
	return res
}

func overlapResult(st discovered.Status) openreports.ReportResult {
	res := openreports.ReportResult{Policy: CheckOverlap, Result: Pass, Properties: map[string]string{PropCount: strconv.Itoa(st.Overlap)}}
	if st.Overlap == 0 {
		res.Description = "No matched instance is matched by another Upstream of the same credentials and region."
		return res
	}
	res.Result = Warn
	res.Description = fmt.Sprintf("%d matched instances are also matched by another Upstream of the same credentials and region (e.g. %s): traffic for both reaches them.", st.Overlap, strings.Join(st.OverlapInstances, ", "))
	res.Properties[PropInstances] = strings.Join(st.OverlapInstances, ",")
	return res
}

func caseResult(up *ec2.Upstream, st discovered.Status) openreports.ReportResult {
	res := openreports.ReportResult{Policy: CheckCaseSensitivity, Result: Pass, Properties: map[string]string{PropCount: strconv.Itoa(st.CaseInsensitiveOnly)}}
	if st.CaseInsensitiveOnly == 0 {
		res.Description = "Tag keys match the same instances case-sensitively (AWS, ec2guard) and case-insensitively (Gloo's plugin)."
		return res
	}
	res.Result = Warn
	res.Description = fmt.Sprintf("%d instances match the filters only when tag keys are compared case-insensitively (e.g. %s): Gloo's own EC2 plugin, which lowercases keys, would route to them; ec2guard, comparing exactly like AWS, does not. Filters: %s.", st.CaseInsensitiveOnly, strings.Join(st.CaseInsensitiveOnlyInstances, ", "), RenderFilters(up.Spec.Filters))
	res.Properties[PropInstances] = strings.Join(st.CaseInsensitiveOnlyInstances, ",")
	return res
}

// secretLike matches what could be an AWS secret access key (40 base64 characters) or session
// token (longer base64 runs).
var secretLike = regexp.MustCompile(`[A-Za-z0-9/+=]{40,}`)

// Redact replaces every run that looks like an AWS secret access key or session token with
// [REDACTED]. Reports are built from an audit that never holds credentials; this is a second line
// of defence for error texts relayed from elsewhere.
func Redact(s string) string { return secretLike.ReplaceAllString(s, "[REDACTED]") }
