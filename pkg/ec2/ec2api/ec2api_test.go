package ec2api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// backoffRecorder is an injected backoff: it records the attempts it was
// asked about and returns a tiny delay, so retry tests do not sleep.
type backoffRecorder struct {
	mu       sync.Mutex
	attempts []int
}

func (b *backoffRecorder) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempts = append(b.attempts, attempt)
	return time.Millisecond, nil
}

func (b *backoffRecorder) calls() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.attempts...)
}

func newClient(t *testing.T, srv *httptest.Server, ro RetryOptions) *ec2.Client {
	t.Helper()
	return ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDUNITTEST00000000", "unit-test-secret", ""),
		HTTPClient:   srv.Client(),
		Retryer:      NewRetryer(ro),
	})
}

// form parses an EC2 Query request.
func form(t *testing.T, r *http.Request) url.Values {
	t.Helper()
	if err := r.ParseForm(); err != nil {
		t.Errorf("parse form: %v", err)
	}
	return r.PostForm
}

func writeEC2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>req-1</RequestID></Response>`, code, msg)
}

type fakeInstance struct {
	id, state, private, public, ipv6, az string
	tags                                 map[string]string
}

func (f fakeInstance) xml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "<item><instanceId>%s</instanceId><instanceState><code>16</code><name>%s</name></instanceState>", f.id, f.state)
	fmt.Fprintf(&b, "<placement><availabilityZone>%s</availabilityZone></placement>", f.az)
	if f.private != "" {
		fmt.Fprintf(&b, "<privateIpAddress>%s</privateIpAddress>", f.private)
	}
	if f.public != "" {
		fmt.Fprintf(&b, "<ipAddress>%s</ipAddress>", f.public)
	}
	if f.ipv6 != "" {
		fmt.Fprintf(&b, "<networkInterfaceSet><item><networkInterfaceId>eni-1</networkInterfaceId><ipv6AddressesSet><item><ipv6Address>%s</ipv6Address></item></ipv6AddressesSet></item></networkInterfaceSet>", f.ipv6)
	}
	b.WriteString("<tagSet>")
	for k, v := range f.tags {
		fmt.Fprintf(&b, "<item><key>%s</key><value>%s</value></item>", k, v)
	}
	b.WriteString("</tagSet></item>")
	return b.String()
}

func writeInstances(w http.ResponseWriter, next string, insts ...fakeInstance) {
	w.Header().Set("Content-Type", "text/xml")
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><reservationSet>`)
	for i, inst := range insts {
		fmt.Fprintf(&b, "<item><reservationId>r-%d</reservationId><ownerId>123456789012</ownerId><instancesSet>%s</instancesSet></item>", i, inst.xml())
	}
	b.WriteString("</reservationSet>")
	if next != "" {
		fmt.Fprintf(&b, "<nextToken>%s</nextToken>", next)
	}
	b.WriteString("</DescribeInstancesResponse>")
	_, _ = w.Write([]byte(b.String()))
}

// filtersOf decodes Filter.N.Name / Filter.N.Value.M from an EC2 Query form.
func filtersOf(f url.Values) map[string][]string {
	out := map[string][]string{}
	for n := 1; ; n++ {
		name := f.Get("Filter." + strconv.Itoa(n) + ".Name")
		if name == "" {
			return out
		}
		for m := 1; ; m++ {
			v, ok := f["Filter."+strconv.Itoa(n)+".Value."+strconv.Itoa(m)]
			if !ok {
				break
			}
			out[name] = append(out[name], v...)
		}
	}
}

func TestListRunningInstancesPaginatesAndConverts(t *testing.T) {
	var mu sync.Mutex
	var seen []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := form(t, r)
		mu.Lock()
		seen = append(seen, f)
		mu.Unlock()
		switch f.Get("NextToken") {
		case "":
			writeInstances(w, "page2",
				fakeInstance{id: "i-1", state: "running", private: "10.0.0.1", public: "54.0.0.1", az: "us-east-1a", tags: map[string]string{"app": "web", "Env": "Prod"}},
				fakeInstance{id: "i-2", state: "stopped", private: "10.0.0.2", az: "us-east-1b"})
		case "page2":
			writeInstances(w, "page3", fakeInstance{id: "i-3", state: "running", private: "10.0.0.3", ipv6: "2600:1f18::3", az: "us-east-1c", tags: map[string]string{"app": "web"}})
		case "page3":
			writeInstances(w, "")
		default:
			writeEC2Error(w, 400, "InvalidParameterValue", "bad token")
		}
	}))
	defer srv.Close()

	filters := []ec2types.Filter{
		{Name: aws.String("tag:app"), Values: []string{"web"}},
		{Name: aws.String(StateFilterName), Values: []string{"stopped"}}, // replaced by running
	}
	got, pages, err := ListRunningInstances(context.Background(), newClient(t, srv, RetryOptions{}), filters)
	if err != nil {
		t.Fatalf("ListRunningInstances: %v", err)
	}
	if pages != 3 {
		t.Errorf("pages = %d, want 3", pages)
	}
	if len(got) != 2 || got[0].ID != "i-1" || got[1].ID != "i-3" {
		t.Fatalf("instances = %+v, want i-1 and i-3", got)
	}
	want0 := Instance{ID: "i-1", PrivateIPv4: "10.0.0.1", PublicIPv4: "54.0.0.1", AvailabilityZone: "us-east-1a", State: "running", Tags: map[string]string{"app": "web", "Env": "Prod"}}
	if fmt.Sprint(got[0]) != fmt.Sprint(want0) {
		t.Errorf("instance 0 = %+v, want %+v", got[0], want0)
	}
	if got[1].IPv6 != "2600:1f18::3" || got[1].PublicIPv4 != "" || got[1].AvailabilityZone != "us-east-1c" {
		t.Errorf("instance 1 = %+v", got[1])
	}
	if len(seen) != 3 {
		t.Fatalf("requests = %d, want 3", len(seen))
	}
	for i, f := range seen {
		if f.Get("Action") != "DescribeInstances" || f.Get("MaxResults") != "1000" {
			t.Errorf("request %d: Action=%q MaxResults=%q, want DescribeInstances/1000", i, f.Get("Action"), f.Get("MaxResults"))
		}
		fs := filtersOf(f)
		if fmt.Sprint(fs[StateFilterName]) != "[running]" || fmt.Sprint(fs["tag:app"]) != "[web]" || len(fs) != 2 {
			t.Errorf("request %d filters = %v, want instance-state-name=[running] and tag:app=[web]", i, fs)
		}
	}
	if filters[1].Values[0] != "stopped" {
		t.Errorf("caller's filters were modified: %v", filters[1].Values)
	}
}

func TestListRunningInstancesErrorNamesPage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if form(t, r).Get("NextToken") == "" {
			writeInstances(w, "p2", fakeInstance{id: "i-1", state: "running", private: "10.0.0.1"})
			return
		}
		writeEC2Error(w, 403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
	}))
	defer srv.Close()
	got, pages, err := ListRunningInstances(context.Background(), newClient(t, srv, RetryOptions{}), nil)
	if err == nil || got != nil || pages != 1 {
		t.Fatalf("got %v, pages %d, err %v; want nil, 1, error", got, pages, err)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnauthorizedOperation" || !strings.Contains(err.Error(), "page 2") {
		t.Errorf("err = %v, want UnauthorizedOperation naming page 2", err)
	}
}

func TestDryRun(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code      string
		allowed   bool
		unknown   bool
		wantCode  string
		retryable bool
	}{
		{status: 412, code: "DryRunOperation", allowed: true},
		{status: 403, code: "UnauthorizedOperation", allowed: false},
		{status: 403, code: "AccessDenied", allowed: false}, // moto's answer with auth enabled
		{status: 401, code: "AuthFailure", unknown: true, wantCode: "AuthFailure"},
		{status: 400, code: "OptInRequired", unknown: true, wantCode: "OptInRequired"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				f := form(t, r)
				if f.Get("DryRun") != "true" || f.Get("Action") != "DescribeInstances" {
					t.Errorf("request Action=%q DryRun=%q, want DescribeInstances/true", f.Get("Action"), f.Get("DryRun"))
				}
				writeEC2Error(w, tc.status, tc.code, "message for "+tc.code)
			}))
			defer srv.Close()
			allowed, err := DryRunDescribeInstances(context.Background(), newClient(t, srv, RetryOptions{Backoff: &backoffRecorder{}}))
			if allowed != tc.allowed {
				t.Errorf("allowed = %v, want %v", allowed, tc.allowed)
			}
			var unk *UnknownError
			if tc.unknown {
				if !errors.As(err, &unk) || unk.Code != tc.wantCode {
					t.Fatalf("err = %v, want *UnknownError with code %s", err, tc.wantCode)
				}
			} else if err != nil {
				t.Fatalf("err = %v, want nil", err)
			}
			if calls.Load() != 1 {
				t.Errorf("calls = %d, want 1 (not retried)", calls.Load())
			}
		})
	}
}

// throttlingServer answers RequestLimitExceeded to the first `throttles`
// requests and DryRunOperation / an empty page afterwards.
func throttlingServer(t *testing.T, throttles int32, calls *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		f := form(t, r)
		if n <= throttles {
			writeEC2Error(w, 503, "RequestLimitExceeded", "Request limit exceeded.")
			return
		}
		if f.Get("DryRun") == "true" {
			writeEC2Error(w, 412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
			return
		}
		writeInstances(w, "", fakeInstance{id: "i-9", state: "running", private: "10.0.0.9"})
	}))
}

func TestRequestLimitExceededRetriedThenSucceeds(t *testing.T) {
	var calls atomic.Int32
	srv := throttlingServer(t, 3, &calls)
	defer srv.Close()
	bo := &backoffRecorder{}
	got, pages, err := ListRunningInstances(context.Background(), newClient(t, srv, RetryOptions{MaxAttempts: 4, Backoff: bo}), nil)
	if err != nil {
		t.Fatalf("ListRunningInstances: %v", err)
	}
	if len(got) != 1 || pages != 1 {
		t.Errorf("got %d instances in %d pages, want 1 in 1", len(got), pages)
	}
	if calls.Load() != 4 {
		t.Errorf("requests = %d, want 4 (3 throttled + 1)", calls.Load())
	}
	if fmt.Sprint(bo.calls()) != "[1 2 3]" {
		t.Errorf("backoff asked for attempts %v, want [1 2 3]", bo.calls())
	}
}

func TestRequestLimitExceededStopsAtBudget(t *testing.T) {
	var calls atomic.Int32
	srv := throttlingServer(t, 100, &calls)
	defer srv.Close()
	bo := &backoffRecorder{}
	allowed, err := DryRunDescribeInstances(context.Background(), newClient(t, srv, RetryOptions{MaxAttempts: 3, Backoff: bo}))
	var unk *UnknownError
	if allowed || !errors.As(err, &unk) || unk.Code != "RequestLimitExceeded" {
		t.Fatalf("allowed=%v err=%v, want unknown RequestLimitExceeded", allowed, err)
	}
	if calls.Load() != 3 {
		t.Errorf("requests = %d, want exactly the budget of 3", calls.Load())
	}
	if len(bo.calls()) != 2 {
		t.Errorf("backoff calls = %v, want 2", bo.calls())
	}
}

func TestDefaultRetryBudget(t *testing.T) {
	var calls atomic.Int32
	srv := throttlingServer(t, 100, &calls)
	defer srv.Close()
	_, _, err := ListRunningInstances(context.Background(), newClient(t, srv, RetryOptions{Backoff: &backoffRecorder{}}), nil)
	if err == nil {
		t.Fatal("want an error after the retry budget")
	}
	if calls.Load() != DefaultMaxAttempts {
		t.Errorf("requests = %d, want DefaultMaxAttempts %d", calls.Load(), DefaultMaxAttempts)
	}
}

func TestAdaptiveModeRetriesThrottling(t *testing.T) {
	if testing.Short() {
		t.Skip("adaptive mode waits about 2 s for a rate token after a throttle")
	}
	var calls atomic.Int32
	srv := throttlingServer(t, 1, &calls)
	defer srv.Close()
	bo := &backoffRecorder{}
	allowed, err := DryRunDescribeInstances(context.Background(), newClient(t, srv, RetryOptions{MaxAttempts: 3, Backoff: bo, Adaptive: true}))
	if !allowed || err != nil {
		t.Fatalf("allowed=%v err=%v, want allowed", allowed, err)
	}
	if calls.Load() != 2 || len(bo.calls()) != 1 {
		t.Errorf("requests=%d backoffs=%v, want 2 and 1", calls.Load(), bo.calls())
	}
}

func TestHungEndpointEndsAtDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	client := newClient(t, srv, RetryOptions{Backoff: &backoffRecorder{}})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := ListRunningInstances(ctx, client, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ListRunningInstances err = %v, want context.DeadlineExceeded", err)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	allowed, err := DryRunDescribeInstances(ctx2, client)
	var unk *UnknownError
	if allowed || !errors.As(err, &unk) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DryRun allowed=%v err=%v, want unknown with context.DeadlineExceeded", allowed, err)
	}
}

func TestNewRetryerDefaults(t *testing.T) {
	r := NewRetryer(RetryOptions{})
	if r.MaxAttempts() != DefaultMaxAttempts {
		t.Errorf("MaxAttempts = %d, want %d", r.MaxAttempts(), DefaultMaxAttempts)
	}
	if _, ok := r.(*retry.Standard); !ok {
		t.Errorf("retryer = %T, want *retry.Standard", r)
	}
	if _, ok := NewRetryer(RetryOptions{Adaptive: true, MaxAttempts: 7}).(*retry.AdaptiveMode); !ok {
		t.Error("Adaptive: want *retry.AdaptiveMode")
	}
	if !r.IsErrorRetryable(&smithy.GenericAPIError{Code: "RequestLimitExceeded"}) {
		t.Error("RequestLimitExceeded must be retryable")
	}
}

// endlessPages answers every DescribeInstances with one running instance and a new NextToken.
type endlessPages struct{ calls int }

func (e *endlessPages) DescribeInstances(_ context.Context, _ *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	e.calls++
	return &ec2.DescribeInstancesOutput{
		Reservations: []ec2types.Reservation{{Instances: []ec2types.Instance{{
			InstanceId: aws.String(fmt.Sprintf("i-%017d", e.calls)),
			State:      &ec2types.InstanceState{Name: ec2types.InstanceStateNameRunning},
		}}}},
		NextToken: aws.String(fmt.Sprintf("token-%d", e.calls)),
	}, nil
}

// TestListingIsBounded: a listing that never ends stops after MaxPages pages with an error that
// names the bound, and keeps nothing.
func TestListingIsBounded(t *testing.T) {
	e := &endlessPages{}
	insts, pages, err := ListRunningInstances(context.Background(), e, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d pages", MaxPages)) || insts != nil || pages != MaxPages || e.calls != MaxPages {
		t.Fatalf("endless listing: %d instances, %d pages, %d calls, %v", len(insts), pages, e.calls, err)
	}
}
