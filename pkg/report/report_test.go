package report

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	openreports "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/verdict"
)

var now = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

func upstream(name string, filters ...ec2.Filter) *ec2.Upstream {
	return &ec2.Upstream{Namespace: "gloo-system", Name: name, Spec: ec2.Spec{Region: "us-east-1", Filters: filters}}
}

func allowed() *discovered.IAMStatus {
	f := false
	return &discovered.IAMStatus{Principal: "arn:aws:iam::123456789012:user/discover-a", Decision: verdict.DecisionAllowed,
		Source: verdict.SourceListing, RegionPinned: &f, Sources: []discovered.SourceDecision{
			{Source: verdict.SourceListing, Decision: verdict.DecisionAllowed}, {Source: verdict.SourceLocal, Decision: verdict.DecisionAllowed}}}
}

// webInput is an Upstream with overlap, case-insensitive-only matches and a skipped instance.
func webInput() Input {
	return Input{Upstream: upstream("web", ec2.KVFilter("app", "web"), ec2.KeyFilter("Team")), UID: "uid-web", Now: now, Status: discovered.Status{
		Count: 9, Matched: 10, Skipped: 1,
		SkippedInstances: []discovered.Skip{{InstanceID: "i-0000000000000000a", Reason: discovered.SkipBadPortTag, Detail: "tag port: port tag value 99999 is not a port 1-65535"}},
		Overlap:          2, OverlapInstances: []string{"i-01", "i-02"},
		CaseInsensitiveOnly: 1, CaseInsensitiveOnlyInstances: []string{"i-03"},
		IAM: allowed(), Consistency: string(policycheck.PermissiveCredentialsDiscerningFilters), Group: "secret/gloo-system/aws-a|us-east-1|",
	}}
}

func results(r *Report) map[string]openreports.ReportResult {
	out := map[string]openreports.ReportResult{}
	for _, res := range r.Results {
		out[res.Policy] = res
	}
	return out
}

func TestBuildWeb(t *testing.T) {
	r := Build(webInput())
	if r.APIVersion != "openreports.io/v1alpha1" || r.Kind != "Report" || r.Name != "ec2guard-web" || r.Namespace != "gloo-system" || r.Source != "ec2guard" {
		t.Fatalf("identity: %s %s %s/%s source %q", r.APIVersion, r.Kind, r.Namespace, r.Name, r.Source)
	}
	if r.Labels[LabelManagedBy] != "ec2guard" || r.Labels[LabelUpstream] != "web" {
		t.Errorf("labels %v", r.Labels)
	}
	if len(r.OwnerReferences) != 1 {
		t.Fatalf("owner references %v", r.OwnerReferences)
	}
	o := r.OwnerReferences[0]
	if o.APIVersion != "gloo.solo.io/v1" || o.Kind != "Upstream" || o.Name != "web" || o.UID != "uid-web" || *o.Controller || *o.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", o)
	}
	if r.Scope == nil || r.Scope.Kind != "Upstream" || r.Scope.Name != "web" || r.Scope.Namespace != "gloo-system" || r.Scope.UID != "uid-web" {
		t.Errorf("scope %+v", r.Scope)
	}
	want := map[string]openreports.Result{CheckIAM: Pass, CheckConsistency: Pass, CheckDiscovery: Warn, CheckOverlap: Warn, CheckCaseSensitivity: Warn}
	got := results(r)
	for check, w := range want {
		if got[check].Result != w {
			t.Errorf("%s = %s (%s), want %s", check, got[check].Result, got[check].Description, w)
		}
	}
	if r.Summary != (openreports.ReportSummary{Pass: 2, Warn: 3}) {
		t.Errorf("summary %+v", r.Summary)
	}
	p := got[CheckConsistency].Properties
	if p[PropRegion] != "us-east-1" || p[PropPrincipal] != "arn:aws:iam::123456789012:user/discover-a" || p[PropMatched] != "10" ||
		p[PropFilters] != "kvPair: {key: app, value: web}; key: Team" || p[PropConsistency] != "permissive-credentials-discerning-filters" ||
		p[PropIAMSource] != "describe-instances" {
		t.Errorf("properties %v", p)
	}
	if d := got[CheckDiscovery].Description; !strings.Contains(d, "i-0000000000000000a (bad-port-tag: tag port: port tag value 99999") {
		t.Errorf("discovery message %q", d)
	}
	if d := got[CheckCaseSensitivity].Description; !strings.Contains(d, "i-03") || !strings.Contains(d, "lowercases") {
		t.Errorf("case-sensitivity message %q", d)
	}
}

func TestBuildClasses(t *testing.T) {
	deny := &discovered.IAMStatus{Decision: verdict.DecisionImplicitDeny, Source: verdict.SourceListing, Sources: []discovered.SourceDecision{
		{Source: verdict.SourceListing, Decision: verdict.DecisionImplicitDeny, Reason: "UnauthorizedOperation: You are not authorized to perform this operation."},
		{Source: verdict.SourceLocal, Decision: verdict.DecisionImplicitDeny, Reason: `statement "TagScoped" is scoped to ec2:ResourceTag/team`}}}
	unknown := &discovered.IAMStatus{Decision: verdict.DecisionUnknown, Source: verdict.SourceNone, Sources: []discovered.SourceDecision{
		{Source: verdict.SourceListing, Decision: verdict.DecisionUnknown, Reason: "AWS rejected the credentials: AuthFailure"}}}
	tr := true
	pinned := allowed()
	pinned.RegionPinned = &tr
	for _, tc := range []struct {
		name         string
		iam          *discovered.IAMStatus
		class        policycheck.ConsistencyClass
		iamResult    openreports.Result
		consistency  openreports.Result
		mentionsTags bool
	}{
		{"deny", deny, policycheck.CredentialsDeny, Fail, Fail, true},
		{"explicit", &discovered.IAMStatus{Decision: verdict.DecisionExplicitDeny, Source: verdict.SourceLocal}, policycheck.CredentialsDeny, Fail, Fail, false},
		{"unknown", unknown, policycheck.PermissiveCredentialsNoFilters, Error, Warn, true},
		{"open", allowed(), policycheck.PermissiveCredentialsNoFilters, Pass, Warn, true},
		{"discerning", allowed(), policycheck.PermissiveCredentialsDiscerningFilters, Pass, Pass, false},
		{"pinned", pinned, policycheck.RestrictiveCredentialsNoFilters, Pass, Pass, true},
		{"pinned-filters", pinned, policycheck.RestrictiveCredentialsDiscerningFilters, Pass, Pass, true},
		{"unaudited", nil, "", Skip, Skip, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Upstream: upstream("u"), UID: "x", Now: now, Status: discovered.Status{IAM: tc.iam, Consistency: string(tc.class)}}
			got := results(Build(in))
			if got[CheckIAM].Result != tc.iamResult {
				t.Errorf("iam = %s (%s)", got[CheckIAM].Result, got[CheckIAM].Description)
			}
			c := got[CheckConsistency]
			if c.Result != tc.consistency {
				t.Errorf("consistency = %s (%s)", c.Result, c.Description)
			}
			if m := strings.Contains(c.Description, "cannot restrict it by tag"); m != tc.mentionsTags {
				t.Errorf("tag-scoping note present = %v: %s", m, c.Description)
			}
			if tc.class != "" && !strings.HasPrefix(c.Description, string(tc.class)) {
				t.Errorf("message does not name the class: %s", c.Description)
			}
		})
	}
}

func TestBuildStale(t *testing.T) {
	in := webInput()
	in.Status.Stale, in.Status.StaleSince, in.Status.LastError = true, "2026-11-30T09:00:00Z", "list running instances: AuthFailure: AWS was not able to validate the provided access credentials"
	d := results(Build(in))[CheckDiscovery]
	if d.Result != Error || !strings.Contains(d.Description, "AuthFailure") || !strings.Contains(d.Description, "2026-11-30T09:00:00Z") {
		t.Errorf("stale discovery = %s: %s", d.Result, d.Description)
	}
}

// fakeSecret is what an AWS secret access key looks like (the documentation example), kept in
// testdata so that no secret-shaped value is written in source.
var fakeSecret = func() string {
	b, err := os.ReadFile("testdata/example-secret-access-key.txt")
	if err != nil {
		panic(fmt.Sprintf("test data: %v", err))
	}
	return strings.TrimSpace(string(b))
}()

func TestBuildInvalidUpstream(t *testing.T) {
	in := Input{Upstream: upstream("bad"), UID: "x", Now: now, Status: discovered.Status{LastError: "invalid upstream, not discovered: spec.awsEc2.region: Invalid value"}}
	r := Build(in)
	got := results(r)
	if got[CheckDiscovery].Result != Error || !strings.Contains(got[CheckDiscovery].Description, "spec.awsEc2.region") ||
		got[CheckIAM].Result != Skip || got[CheckConsistency].Result != Skip {
		t.Errorf("invalid upstream results %+v", got)
	}
	if r.Summary.Error != 1 || r.Summary.Skip != 2 {
		t.Errorf("summary %+v", r.Summary)
	}
}

func TestBuildRedactsSecretLookingText(t *testing.T) {
	in := webInput()
	in.Status.Stale, in.Status.LastError = true, "list: signature mismatch for secret "+fakeSecret+" and token "+strings.Repeat("AQoDYXdzEJr", 20)
	in.Status.IAM.Sources[1].Reason = "collect failed: " + fakeSecret
	r := Build(in)
	for _, f := range Formats() {
		var b strings.Builder
		if err := Render(&b, f, []Report{*r}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), fakeSecret) || strings.Contains(b.String(), "AQoDYXdzEJrAQoDYXdzEJr") {
			t.Errorf("%s output contains the secret-looking value", f)
		}
		if !strings.Contains(b.String(), "REDACTED") {
			t.Errorf("%s output does not say what was redacted", f)
		}
	}
}

func TestNameLimits(t *testing.T) {
	long := strings.Repeat("a", 250)
	n := Name(long)
	if len(n) > 253 || !strings.HasPrefix(n, "ec2guard-aaa") || n == Name(long+"b") {
		t.Errorf("Name(long) = %q (%d)", n, len(n))
	}
	if l := UpstreamLabel(long); len(l) > 63 {
		t.Errorf("label %q too long", l)
	}
	if Name("web") != "ec2guard-web" || UpstreamLabel("web") != "web" {
		t.Error("short names must be kept")
	}
}

func TestEqualIgnoresTimestamps(t *testing.T) {
	a := Build(webInput())
	in := webInput()
	in.Now = now.Add(time.Hour)
	b := Build(in)
	if !Equal(a, b) {
		t.Error("reports differing only in timestamps are not equal")
	}
	b.ResourceVersion = "42"
	b.Labels["other"] = "x"
	if !Equal(a, b) {
		t.Error("server-set metadata and foreign labels must not count")
	}
	in.Status.Matched = 11
	if Equal(a, Build(in)) {
		t.Error("a changed matched count must count")
	}
	if Equal(a, nil) || !Equal(nil, nil) {
		t.Error("nil handling")
	}
	var uid types.UID = "other"
	c := Build(webInput())
	c.OwnerReferences[0].UID = uid
	if Equal(a, c) {
		t.Error("owner reference change must count")
	}
}

// TestBuildShowsRefusal: a refused Upstream's report says so in its discovery result (error,
// the code in the description and the refusal property) and names no principal.
func TestBuildShowsRefusal(t *testing.T) {
	in := webInput()
	in.Status = discovered.Status{LastError: "EC2G701: secret default/aws is in another namespace ...",
		Refusal: &discovered.Refusal{Code: string(codes.DiscoverySecretNotShared), Message: "secret default/aws is in another namespace ..."}}
	r := Build(in)
	for _, res := range r.Results {
		if res.Policy != CheckDiscovery {
			if res.Properties[PropPrincipal] != "" {
				t.Errorf("%s names a principal: %v", res.Policy, res.Properties)
			}
			continue
		}
		if res.Result != Error || !strings.Contains(res.Description, "EC2G701") || res.Properties[PropRefusal] != "EC2G701" {
			t.Fatalf("discovery result %+v, want error with EC2G701", res)
		}
		return
	}
	t.Fatal("no discovery result")
}
