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

	"github.com/ec2guard/ec2guard/pkg/discovered"
)

// maxExamples bounds the instance lists in the annotation.
const maxExamples = 10

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
func (a *Annotator) Write(ctx context.Context, key types.NamespacedName, uid types.UID, s discovered.Status) (int, error) {
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
	if v, ok := cur.GetAnnotations()[discovered.Annotation]; ok {
		if old, err := discovered.Parse(v); err == nil && discovered.SameContent(old, s) && !a.heartbeatDue(old, now) {
			return 0, nil
		}
	}
	s.LastRefresh = now.Format(time.RFC3339)
	val, err := json.Marshal(s)
	if err != nil {
		return 0, fmt.Errorf("encode annotation %s of upstream %s: %w", discovered.Annotation, key, err)
	}
	// The uid makes the patch fail on an Upstream that was recreated under the same name.
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         uid,
		"annotations": map[string]string{discovered.Annotation: string(val)},
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

func (a *Annotator) heartbeatDue(old discovered.Status, now time.Time) bool {
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
