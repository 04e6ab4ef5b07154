package discovered

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSameContentIgnoresOnlyLastRefresh(t *testing.T) {
	a := Status{Count: 2, Matched: 3, LastRefresh: "2026-12-01T00:00:00Z", SkippedByReason: map[string]int{SkipBadPortTag: 1}}
	b := a
	b.LastRefresh = "2026-12-02T00:00:00Z"
	b.SkippedByReason = nil
	if !SameContent(a, b) {
		t.Fatal("statuses differing in lastRefresh and the unwritten per-reason counts should have the same content")
	}
	b.Count = 3
	if SameContent(a, b) {
		t.Fatal("statuses with different counts have the same content")
	}
	b = a
	b.Refusal = &Refusal{Code: "EC2G701", Message: "not shared"}
	if SameContent(a, b) {
		t.Fatal("a refusal does not change the content")
	}
}

func TestParseRoundTripAndErrors(t *testing.T) {
	in := Status{Count: 1, Matched: 2, Skipped: 1, SkippedInstances: []Skip{{InstanceID: "i-1", Reason: SkipNoPrivateIPv4}},
		SkippedByReason: map[string]int{SkipNoPrivateIPv4: 1}, IAM: &IAMStatus{Decision: "allowed", Source: "listing"}}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "SkippedByReason") || strings.Contains(string(raw), "skippedByReason") {
		t.Fatalf("the per-reason counts are written into the annotation: %s", raw)
	}
	out, err := Parse(string(raw))
	if err != nil || !SameContent(in, out) || out.SkippedInstances[0].Reason != SkipNoPrivateIPv4 || out.IAM.Source != "listing" {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	if _, err := Parse(`{"count": "three"}`); err == nil || !strings.Contains(err.Error(), Annotation) {
		t.Fatalf("a bad value: error %v, want one naming %s", err, Annotation)
	}
}
