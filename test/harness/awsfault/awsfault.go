// Package awsfault is a proxy in front of an AWS emulator (moto) that injects what real AWS does on
// a bad day: throttling errors, 5xx answers, requests that hang past any deadline, connections
// reset mid-request and bodies that trickle in. It also adds latency to every call and counts the
// calls by action. It listens on 127.0.0.1 only and forwards only to the target it was given.
package awsfault

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/ec2sim"
)

// Kind is a kind of fault.
type Kind string

// The faults.
const (
	// Throttle answers with the service's throttling error (EC2: RequestLimitExceeded, HTTP 503;
	// IAM and STS: Throttling, HTTP 400), which the SDK retries with backoff.
	Throttle Kind = "throttle"
	// ServerError answers HTTP 500 InternalError (EC2) / 503 ServiceUnavailable (IAM, STS).
	ServerError Kind = "server-error"
	// Hang never answers; the request ends when the client gives up.
	Hang Kind = "hang"
	// Reset closes the connection with a TCP reset without answering.
	Reset Kind = "reset"
	// SlowBody forwards the request and sends the answer one byte at a time, Fault.ByteDelay
	// (default 100 ms) apart.
	SlowBody Kind = "slow-body"
)

// Fault injects Kind into every request that matches: Action ("" any, e.g. "DescribeInstances"),
// Service ("" any; "ec2", "iam", "sts", from the SigV4 scope) and AccessKeyID ("" any).
type Fault struct {
	Kind        Kind
	Action      string
	Service     string
	AccessKeyID string
	// ByteDelay is SlowBody's pause between bytes (0: 100 ms).
	ByteDelay time.Duration
}

func (f Fault) matches(r request) bool {
	return (f.Action == "" || f.Action == r.action) && (f.Service == "" || f.Service == r.service) &&
		(f.AccessKeyID == "" || f.AccessKeyID == r.accessKeyID)
}

// Proxy is a running proxy.
type Proxy struct {
	srv     *httptest.Server
	target  *httputil.ReverseProxy
	latency atomic.Int64

	mu       sync.Mutex
	faults   []Fault
	calls    map[string]int
	byKey    map[string]int
	injected map[Kind]int
}

// Start runs a proxy to target (an http://127.0.0.1 URL) until Close.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("awsfault: target %q: %w", target, err)
	}
	if host := u.Hostname(); host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return nil, fmt.Errorf("awsfault: target %q is not on loopback", target)
	}
	p := &Proxy{target: httputil.NewSingleHostReverseProxy(u), calls: map[string]int{}, byKey: map[string]int{}, injected: map[Kind]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve)) // listens on 127.0.0.1:0
	return p, nil
}

// URL is the proxy's endpoint (give it as --aws-endpoint).
func (p *Proxy) URL() string { return p.srv.URL }

// Close stops the proxy; hanging requests end.
func (p *Proxy) Close() {
	p.srv.CloseClientConnections()
	p.srv.Close()
}

// SetLatency delays every request by d before anything else.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetFaults replaces the active faults (none: every request is forwarded).
func (p *Proxy) SetFaults(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append([]Fault(nil), faults...)
}

// Calls returns the requests seen so far by action (faulted ones included).
func (p *Proxy) Calls() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.calls)
}

// DescribeCallsByKey returns the DescribeInstances requests seen so far by access key id.
func (p *Proxy) DescribeCallsByKey() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.byKey)
}

// Injected returns how many requests got each fault.
func (p *Proxy) Injected() map[Kind]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.injected)
}

// Total adds up a Calls map.
func Total(calls map[string]int) int {
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}

// Since returns the calls made between two Calls readings.
func Since(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// request is what a fault can match on.
type request struct{ action, service, accessKeyID string }

var scopeRe = regexp.MustCompile(`Credential=([A-Z0-9]+)/[0-9]{8}/[a-z0-9-]+/([a-z0-9-]+)/aws4_request`)

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "awsfault: read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	req := request{action: "other"}
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		req.action = form.Get("Action")
	}
	if m := scopeRe.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		req.accessKeyID, req.service = m[1], m[2]
	}
	p.mu.Lock()
	p.calls[req.action]++
	if req.action == "DescribeInstances" {
		p.byKey[req.accessKeyID]++
	}
	var fault *Fault
	for i := range p.faults {
		if p.faults[i].matches(req) {
			f := p.faults[i]
			fault = &f
			p.injected[f.Kind]++
			break
		}
	}
	p.mu.Unlock()

	if d := time.Duration(p.latency.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if fault == nil {
		p.target.ServeHTTP(w, r)
		return
	}
	switch fault.Kind {
	case Throttle:
		if req.service == "ec2" {
			ec2sim.WriteEC2Error(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.", "awsfault")
		} else {
			writeQueryError(w, http.StatusBadRequest, "Throttling", "Rate exceeded")
		}
	case ServerError:
		if req.service == "ec2" {
			ec2sim.WriteEC2Error(w, http.StatusInternalServerError, "InternalError", "An internal error has occurred", "awsfault")
		} else {
			writeQueryError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "Service is unavailable")
		}
	case Hang:
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Minute):
		}
	case Reset:
		reset(w)
	case SlowBody:
		rec := httptest.NewRecorder()
		p.target.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		flusher, _ := w.(http.Flusher)
		delay := fault.ByteDelay
		if delay <= 0 {
			delay = 100 * time.Millisecond
		}
		for _, b := range rec.Body.Bytes() {
			if _, err := w.Write([]byte{b}); err != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
	default:
		http.Error(w, "awsfault: unknown fault "+string(fault.Kind), http.StatusInternalServerError)
	}
}

// reset closes the client's connection with RST (linger 0) without an answer.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

type errorXML struct {
	Type    string `xml:"Type,omitempty"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type queryError struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Error     errorXML `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

func writeQueryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(queryError{Error: errorXML{Type: "Sender", Code: code, Message: msg}, RequestID: "awsfault"})
}
