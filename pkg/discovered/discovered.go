// Package discovered is the content of the ec2guard.io/discovered annotation: what the discoverer
// found for one EC2 Upstream in its last refresh (endpoints published and skipped, overlaps, the
// re-audited IAM decision, refusals, staleness). The discoverer writes it (pkg/discovery), the
// consistency reports are built from it (pkg/report) and the CLI reads it back. It is a leaf: it
// imports nothing of ec2guard, so all three can use it. Nothing in it is a credential value.
package discovered

import (
	"encoding/json"
	"fmt"
)

// Annotation is the annotation on every EC2 Upstream that summarises its discovery.
const Annotation = "ec2guard.io/discovered"

// Status is the content of the ec2guard.io/discovered annotation (JSON). Everything in it but
// LastRefresh changes only when discovery's outcome changes, so an unchanged refresh writes
// nothing: LastRefresh is the time of the refresh that last changed the content, renewed at most
// every --annotation-heartbeat (0: never) when nothing changes.
type Status struct {
	// Count is the number of endpoints published.
	Count int `json:"count"`
	// Matched is the number of running instances the filters select (published or skipped).
	Matched int `json:"matched"`
	// Skipped counts selected instances that are not published; SkippedInstances are the first
	// of them with the reason.
	Skipped          int    `json:"skipped,omitempty"`
	SkippedInstances []Skip `json:"skippedInstances,omitempty"`
	// SkippedByReason counts every skipped instance by reason (for metrics; not written).
	SkippedByReason map[string]int `json:"-"`
	// Overlap counts selected instances that another Upstream of the same credential group selects
	// too; OverlapInstances are the first of them.
	Overlap          int      `json:"overlap,omitempty"`
	OverlapInstances []string `json:"overlapInstances,omitempty"`
	// CaseInsensitiveOnly counts instances that Gloo's own EC2 plugin (which lowercases tag keys)
	// would select and ec2guard, comparing exactly like AWS, does not.
	CaseInsensitiveOnly          int      `json:"caseInsensitiveOnly,omitempty"`
	CaseInsensitiveOnlyInstances []string `json:"caseInsensitiveOnlyInstances,omitempty"`
	// IAM is the re-audited decision for ec2:DescribeInstances in the Upstream's region.
	IAM *IAMStatus `json:"iam,omitempty"`
	// Consistency is the consistency class (pkg/verdict).
	Consistency string `json:"consistency,omitempty"`
	// IAMCodes are the codes of the IAM problems the one IAM verdict pipeline (pkg/verdict) finds
	// for the Upstream, as the webhook reports them (EC2G501-506, EC2G601, the engine's findings).
	IAMCodes []string `json:"iamCodes,omitempty"`
	// Stale is true while the credential group fails to refresh: the published endpoints are the
	// last good ones, listed before StaleSince.
	Stale      bool   `json:"stale,omitempty"`
	StaleSince string `json:"staleSince,omitempty"`
	// LastError is the error of the last refresh or publication ("" when it went well).
	LastError string `json:"lastError,omitempty"`
	// Refusal is set when the discoverer does not discover the Upstream because it may not use
	// the credentials the Upstream names (EC2G701, EC2G702); nothing is published for it then.
	Refusal *Refusal `json:"refusal,omitempty"`
	// Group is the credential group (secret/NS/NAME|REGION|ROLE).
	Group string `json:"group,omitempty"`
	// LastRefresh: see the type's comment.
	LastRefresh string `json:"lastRefresh,omitempty"`
}

// Reasons an instance that an Upstream's filters select is not published.
const (
	SkipNoPrivateIPv4 = "no-private-ipv4"
	SkipNoPublicIPv4  = "no-public-ipv4"
	SkipBadPortTag    = "bad-port-tag"
)

// Skip is a selected instance that is not published, with the reason.
type Skip struct {
	InstanceID string `json:"id"`
	// Reason is one of the Skip* constants.
	Reason string `json:"reason"`
	// Detail says what exactly is wrong (e.g. the bad port tag value).
	Detail string `json:"detail,omitempty"`
}

// Refusal says why the discoverer does not discover an Upstream with the credentials it names:
// the code (EC2G701, EC2G702) and a message naming the rule (never a credential).
type Refusal struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// String renders the refusal as "CODE: message".
func (r *Refusal) String() string { return r.Code + ": " + r.Message }

// IAMStatus is a credential group's IAM decision for ec2:DescribeInstances in its region. The
// decisions and sources are pkg/verdict's.
type IAMStatus struct {
	Principal string `json:"principal,omitempty"`
	Decision  string `json:"decision"`
	Source    string `json:"source"`
	// Sources are every source's answer, the deciding one first among equals (listing, local).
	Sources []SourceDecision `json:"sources,omitempty"`
	// RegionPinned says whether the policies allow DescribeInstances only in named regions;
	// nil when the engine could not tell.
	RegionPinned *bool `json:"regionPinned,omitempty"`
}

// SourceDecision is one source's answer.
type SourceDecision struct {
	Source   string `json:"source"`
	Decision string `json:"decision"`
	// Reason is set when the source denied or could not decide.
	Reason string `json:"reason,omitempty"`
}

// SameContent reports whether two statuses differ in nothing but LastRefresh.
func SameContent(a, b Status) bool {
	a.LastRefresh, b.LastRefresh = "", ""
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// Parse reads an ec2guard.io/discovered annotation value.
func Parse(v string) (Status, error) {
	var s Status
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return Status{}, fmt.Errorf("annotation %s: %w", Annotation, err)
	}
	return s, nil
}
