package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AnnotationDiscovered is the annotation on every EC2 Upstream that summarises its discovery.
const AnnotationDiscovered = "ec2guard.io/discovered"

// maxExamples bounds the instance lists in the annotation.
const maxExamples = 10

// Status is the content of the ec2guard.io/discovered annotation (JSON). Everything in it but
// lastRefresh changes only when discovery's outcome changes, so an unchanged refresh writes
// nothing: lastRefresh is the time of the refresh that last changed the content, renewed at most
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

	skippedByReason map[string]int
}

// sameContent reports whether two statuses differ in nothing but LastRefresh.
func sameContent(a, b Status) bool {
	a.LastRefresh, b.LastRefresh = "", ""
	a.skippedByReason, b.skippedByReason = nil, nil
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// ParseStatus reads an ec2guard.io/discovered annotation value.
func ParseStatus(v string) (Status, error) {
	var s Status
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return Status{}, fmt.Errorf("annotation %s: %w", AnnotationDiscovered, err)
	}
	return s, nil
}

// Annotator writes the ec2guard.io/discovered annotation when its content changed.
type Annotator struct {
	reader    client.Reader
	writer    client.Writer
	metrics   *Metrics
	clock     clock.PassiveClock
	heartbeat time.Duration
	log       logr.Logger
}

// NewAnnotator returns an annotator. heartbeat renews lastRefresh of an unchanged status at most
// that often (0: only on change).
func NewAnnotator(reader client.Reader, writer client.Writer, m *Metrics, clk clock.PassiveClock, heartbeat time.Duration, log logr.Logger) *Annotator {
	return &Annotator{reader: reader, writer: writer, metrics: m, clock: clk, heartbeat: heartbeat, log: log}
}

// Write sets the annotation of the Upstream key (with uid) to s unless the current value — read
// from the cache — has the same content and its lastRefresh is within the heartbeat. It returns
// the number of API writes.
func (a *Annotator) Write(ctx context.Context, key types.NamespacedName, uid types.UID, s Status) (int, error) {
	cur := NewUpstreamObject()
	if err := a.reader.Get(ctx, key, cur, client.UnsafeDisableDeepCopy); err != nil { // read only
		if apierrors.IsNotFound(err) {
			return 0, nil // deleted meanwhile
		}
		return 0, fmt.Errorf("get upstream %s: %w", key, err)
	}
	if cur.GetUID() != uid {
		return 0, nil // recreated meanwhile; its own target will be annotated
	}
	now := a.clock.Now().UTC()
	if v, ok := cur.GetAnnotations()[AnnotationDiscovered]; ok {
		if old, err := ParseStatus(v); err == nil && sameContent(old, s) && !a.heartbeatDue(old, now) {
			return 0, nil
		}
	}
	s.LastRefresh = now.Format(time.RFC3339)
	val, err := json.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("encode annotation %s of upstream %s: %w", AnnotationDiscovered, key, err)
	}
	// The uid makes the patch fail on an Upstream that was recreated under the same name.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         uid,
		"annotations": map[string]string{AnnotationDiscovered: string(val)},
	}})
	if err != nil {
		return 0, fmt.Errorf("encode patch of upstream %s: %w", key, err)
	}
	obj := NewUpstreamObject()
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	err = a.writer.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
	a.metrics.KubeWrite("upstreams", "patch", err)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return 1, nil
		}
		return 1, fmt.Errorf("annotate upstream %s: %w", key, err)
	}
	return 1, nil
}

func (a *Annotator) heartbeatDue(old Status, now time.Time) bool {
	if a.heartbeat <= 0 {
		return false
	}
	t, err := time.Parse(time.RFC3339, old.LastRefresh)
	return err != nil || now.Sub(t) >= a.heartbeat
}

// ErrorSummary renders an error for annotations without what changes on every attempt (AWS
// request IDs): AWS API errors become "CODE: message" after the context added by ec2guard.
func ErrorSummary(err error) string {
	if err == nil {
		return ""
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return truncate(err.Error(), 1000)
	}
	msg := err.Error()
	// ec2guard wraps SDK errors as "context: operation error ...: https response error ...".
	prefix, _, found := strings.Cut(msg, "operation error ")
	if !found {
		prefix = ""
	}
	return truncate(prefix+apiErr.ErrorCode()+": "+apiErr.ErrorMessage(), 1000)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
