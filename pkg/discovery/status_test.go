package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/discovery/discoverytest"
)

func TestAnnotatorWritesOnlyOnChangeOrHeartbeat(t *testing.T) {
	ctx := context.Background()
	up := upstreamObj("default", "a", "uid-a", false, ec2Spec("us-east-1", "aws"), nil)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(up).Build()
	w := discoverytest.NewRecordingWriter(c)
	clk := clocktesting.NewFakeClock(time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC))
	a := NewAnnotator(c, w, testMetrics(t), clk, time.Hour, logr.Discard())
	key := types.NamespacedName{Namespace: "default", Name: "a"}

	st := discovered.Status{Count: 3, Matched: 4, Skipped: 1, SkippedInstances: []discovered.Skip{{InstanceID: "i-1", Reason: discovered.SkipBadPortTag}}, Group: "g"}
	if n, err := a.Write(ctx, key, "uid-a", st); err != nil || n != 1 {
		t.Fatalf("first write: %d (err %v), want 1", n, err)
	}
	got := NewUpstreamObject()
	if err := c.Get(ctx, key, got); err != nil {
		t.Fatal(err)
	}
	parsed, err := discovered.Parse(got.GetAnnotations()[discovered.Annotation])
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Count != 3 || parsed.SkippedInstances[0].Reason != discovered.SkipBadPortTag || parsed.LastRefresh != "2025-05-01T12:00:00Z" {
		t.Fatalf("annotation = %+v", parsed)
	}

	clk.Step(30 * time.Minute)
	if n, _ := a.Write(ctx, key, "uid-a", st); n != 0 {
		t.Fatalf("same content within the heartbeat: %d writes, want 0", n)
	}
	clk.Step(31 * time.Minute)
	if n, _ := a.Write(ctx, key, "uid-a", st); n != 1 {
		t.Fatalf("same content after the heartbeat: %d writes, want 1", n)
	}
	st.Count = 2
	if n, _ := a.Write(ctx, key, "uid-a", st); n != 1 {
		t.Fatalf("changed content: %d writes, want 1", n)
	}
	if n, _ := a.Write(ctx, key, "other-uid", st); n != 0 {
		t.Fatalf("a recreated upstream (other uid) must not be annotated, %d writes", n)
	}
	if n, err := a.Write(ctx, types.NamespacedName{Namespace: "default", Name: "gone"}, "x", st); n != 0 || err != nil {
		t.Fatalf("deleted upstream: %d writes, err %v", n, err)
	}
	if w.Count() != 3 {
		t.Fatalf("%d writes reached the API, want 3", w.Count())
	}
}

func TestAnnotatorWithoutHeartbeatNeverRewritesUnchanged(t *testing.T) {
	ctx := context.Background()
	up := upstreamObj("default", "a", "uid-a", false, ec2Spec("us-east-1", "aws"), nil)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(up).Build()
	clk := clocktesting.NewFakeClock(time.Now())
	a := NewAnnotator(c, c, testMetrics(t), clk, 0, logr.Discard())
	key := types.NamespacedName{Namespace: "default", Name: "a"}
	if n, _ := a.Write(ctx, key, "uid-a", discovered.Status{Count: 1}); n != 1 {
		t.Fatal("first write missing")
	}
	clk.Step(1000 * time.Hour)
	if n, _ := a.Write(ctx, key, "uid-a", discovered.Status{Count: 1}); n != 0 {
		t.Fatalf("unchanged status rewritten %d times without heartbeat", n)
	}
}

type fakeAPIError struct{ code, msg string }

func (e fakeAPIError) Error() string                 { return "api error " + e.code + ": " + e.msg }
func (e fakeAPIError) ErrorCode() string             { return e.code }
func (e fakeAPIError) ErrorMessage() string          { return e.msg }
func (e fakeAPIError) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

func TestErrorSummaryDropsRequestIDs(t *testing.T) {
	err := fmt.Errorf("list running instances in us-east-1 with secret default/a: ec2:DescribeInstances page 1: operation error EC2: DescribeInstances, https response error StatusCode: 401, RequestID: 5f1c, %w",
		fakeAPIError{"AuthFailure", "AWS was not able to validate the provided access credentials"})
	got := ErrorSummary(err)
	want := "list running instances in us-east-1 with secret default/a: ec2:DescribeInstances page 1: AuthFailure: AWS was not able to validate the provided access credentials"
	if got != want {
		t.Fatalf("ErrorSummary = %q\nwant %q", got, want)
	}
	if strings.Contains(got, "RequestID") {
		t.Fatal("request id kept")
	}
	if ErrorSummary(nil) != "" || ErrorSummary(errors.New("plain")) != "plain" {
		t.Fatal("nil or plain errors changed")
	}
}
