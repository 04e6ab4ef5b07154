// Package ec2sim is an in-process EC2 API server for scale tests: it speaks the EC2 query protocol
// the AWS SDK uses for DescribeInstances (paginated, with the filters ec2guard sends), answers
// sts:GetCallerIdentity, and throttles each credential (access key id) with its own token bucket,
// the way EC2 meters DescribeInstances per account and region (a bucket of 100 tokens refilled at
// 20 per second). moto is the emulator for behaviour; ec2sim is for fleets moto cannot hold
// (100,000 instances over 1,000 credentials) and for injected latency and throttling.
//
// It listens on 127.0.0.1 only, checks no signature (the access key id is read from the SigV4
// Authorization header) and keeps every instance in memory.
//
// Options.TLS serves HTTPS, as EC2 does. Stats.Retries counts the DescribeInstances requests the
// SDK marks as a repeated attempt (after a throttling answer, or after an answer it lost: see
// OwnBodies in pkg/awsclients for how an answer this fast was lost before ec2guard copied request
// bodies), DescribeCallsOf the requests per access key.
package ec2sim

import (
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// EC2's DescribeInstances throttling bucket per account and region (EC2 API request throttling,
// "non-mutating actions": bucket size 100, refill rate 20 per second).
const (
	DefaultBucketSize = 100
	DefaultRefillRate = 20
)

// Page size limits of DescribeInstances' MaxResults (EC2 API reference).
const (
	MinMaxResults = 5
	MaxMaxResults = 1000
)

// maxBody bounds a request body.
const maxBody = 1 << 20

// Instance is one EC2 instance as the server lists it.
type Instance struct {
	ID        string
	State     string // running, stopped, ...
	PrivateIP string
	AZ        string
	Tags      map[string]string
}

// Options configure a Server. The zero value is usable.
type Options struct {
	// BucketSize and RefillRate configure each credential's token bucket; zero: EC2's 100 and 20/s.
	// A negative RefillRate disables throttling.
	BucketSize int
	RefillRate float64
	// Latency is added to every answer.
	Latency time.Duration
	// TLS serves HTTPS with httptest's certificate for 127.0.0.1 (CertPEM, Client); otherwise plain
	// HTTP (for a plain-HTTP proxy in front of it).
	TLS bool
}

// Stats count what the server answered.
type Stats struct {
	// DescribeCalls counts DescribeInstances requests (throttled ones and dry runs included);
	// Pages the answered non-dry-run pages; Throttled the RequestLimitExceeded answers.
	DescribeCalls, Pages, Throttled, DryRuns, CallerIdentity int64
	// Retries counts the DescribeInstances requests the SDK sent again (its amz-sdk-request header
	// says attempt=2 or later): after a throttling answer, or after a lost answer.
	Retries int64
	// Connections counts the connections accepted.
	Connections int64
}

// Server is a running ec2sim.
type Server struct {
	opts Options
	http *httptest.Server

	mu       sync.RWMutex
	accounts map[string]*account // by access key id

	describeCalls, pages, throttled, dryRuns, callerIdentity, retries, conns atomic.Int64
}

// account is what one access key sees.
type account struct {
	arn       string
	limiter   *rate.Limiter
	instances map[string]*Instance
	order     []string // instance ids, sorted: pages are stable
	// throttleAll answers every DescribeInstances with RequestLimitExceeded.
	throttleAll bool
	// describeCalls counts the key's DescribeInstances requests.
	describeCalls atomic.Int64
}

// Start runs a server on loopback (httptest's 127.0.0.1:0) until Close.
func Start(opts Options) *Server {
	if opts.BucketSize == 0 {
		opts.BucketSize = DefaultBucketSize
	}
	if opts.RefillRate == 0 {
		opts.RefillRate = DefaultRefillRate
	}
	s := &Server{opts: opts, accounts: map[string]*account{}}
	s.http = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.http.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if opts.TLS {
		s.http.StartTLS()
	} else {
		s.http.Start()
	}
	return s
}

// CertPEM is the server's certificate in PEM (a CA file for the SDK's clients: SSL_CERT_FILE for
// a process); nil over plain HTTP.
func (s *Server) CertPEM() []byte {
	if !s.opts.TLS {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.http.Certificate().Raw})
}

// Client is an HTTP client that trusts the server's certificate (aws.Config.HTTPClient).
func (s *Server) Client() *http.Client { return s.http.Client() }

// URL is the endpoint to give the SDK (BaseEndpoint) or ec2guard (--aws-endpoint).
func (s *Server) URL() string { return s.http.URL }

// Close stops the server.
func (s *Server) Close() { s.http.Close() }

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{
		DescribeCalls: s.describeCalls.Load(), Pages: s.pages.Load(), Throttled: s.throttled.Load(),
		DryRuns: s.dryRuns.Load(), CallerIdentity: s.callerIdentity.Load(), Retries: s.retries.Load(),
		Connections: s.conns.Load(),
	}
}

// DescribeCallsOf counts the DescribeInstances requests made with an access key id (throttled
// ones, dry runs and retries included) since the key was last added.
func (s *Server) DescribeCallsOf(accessKeyID string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if a, ok := s.accounts[accessKeyID]; ok {
		return a.describeCalls.Load()
	}
	return 0
}

// AddAccount registers an access key id, the IAM user ARN GetCallerIdentity answers for it and the
// instances it sees. Adding a key again replaces its instances.
func (s *Server) AddAccount(accessKeyID, arn string, instances []Instance) {
	a := &account{arn: arn, instances: make(map[string]*Instance, len(instances))}
	if s.opts.RefillRate > 0 {
		a.limiter = rate.NewLimiter(rate.Limit(s.opts.RefillRate), s.opts.BucketSize)
	}
	for i := range instances {
		inst := instances[i]
		inst.Tags = maps.Clone(inst.Tags)
		a.instances[inst.ID] = &inst
		a.order = append(a.order, inst.ID)
	}
	slices.Sort(a.order)
	s.mu.Lock()
	s.accounts[accessKeyID] = a
	s.mu.Unlock()
}

// SetTags replaces the tags of one instance of an account.
func (s *Server) SetTags(accessKeyID, instanceID string, tags map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[accessKeyID]
	if !ok {
		return fmt.Errorf("ec2sim: no account for access key %s", accessKeyID)
	}
	inst, ok := a.instances[instanceID]
	if !ok {
		return fmt.Errorf("ec2sim: account %s has no instance %s", accessKeyID, instanceID)
	}
	inst.Tags = maps.Clone(tags)
	return nil
}

// ThrottleAll makes every DescribeInstances of the account fail with RequestLimitExceeded (on) or
// go back to its token bucket (off).
func (s *Server) ThrottleAll(accessKeyID string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[accessKeyID]; ok {
		a.throttleAll = on
	}
}

// credentialRe reads the access key id out of a SigV4 Authorization header.
var credentialRe = regexp.MustCompile(`Credential=([A-Z0-9]+)/`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.opts.Latency > 0 {
		select {
		case <-time.After(s.opts.Latency):
		case <-r.Context().Done():
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", "cannot parse the request: "+err.Error())
		return
	}
	m := credentialRe.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		writeError(w, http.StatusBadRequest, "MissingAuthenticationToken", "no SigV4 credential in the request")
		return
	}
	s.mu.RLock()
	a, ok := s.accounts[m[1]]
	s.mu.RUnlock()
	if !ok {
		writeError(w, http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials")
		return
	}
	switch action := r.PostForm.Get("Action"); action {
	case "DescribeInstances":
		if attemptOf(r.Header.Get("amz-sdk-request")) > 1 {
			s.retries.Add(1)
		}
		s.describeInstances(w, r.PostForm, a)
	case "GetCallerIdentity":
		s.callerIdentity.Add(1)
		writeXML(w, callerIdentityResponse{Xmlns: "https://sts.amazonaws.com/doc/2011-06-15/",
			Result: callerIdentityResult{Arn: a.arn, UserID: "AIDA" + strings.Repeat("X", 17), Account: accountOf(a.arn)},
			Meta:   responseMetadata{RequestID: "ec2sim"}})
	default:
		writeError(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("ec2sim does not implement %q", action))
	}
}

// attemptOf reads N out of the SDK's "attempt=N; max=M" header; 0 when absent or malformed.
func attemptOf(h string) int {
	_, rest, ok := strings.Cut(h, "attempt=")
	if !ok {
		return 0
	}
	v, _, _ := strings.Cut(rest, ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0
	}
	return n
}

func accountOf(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) > 4 {
		return parts[4]
	}
	return ""
}

func (s *Server) describeInstances(w http.ResponseWriter, form url.Values, a *account) {
	s.describeCalls.Add(1)
	a.describeCalls.Add(1)
	s.mu.RLock()
	throttleAll := a.throttleAll
	s.mu.RUnlock()
	if throttleAll || (a.limiter != nil && !a.limiter.Allow()) {
		s.throttled.Add(1)
		writeError(w, http.StatusServiceUnavailable, "RequestLimitExceeded", "Request limit exceeded.")
		return
	}
	if form.Get("DryRun") == "true" {
		s.dryRuns.Add(1)
		writeError(w, http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
		return
	}
	filters, err := parseFilters(form)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	limit := MaxMaxResults
	if v := form.Get("MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < MinMaxResults || n > MaxMaxResults {
			writeError(w, http.StatusBadRequest, "InvalidParameterValue",
				fmt.Sprintf("Value ( %s ) for parameter maxResults is invalid. Expecting a value between %d and %d.", v, MinMaxResults, MaxMaxResults))
			return
		}
		limit = n
	}
	start := 0
	if tok := form.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "InvalidParameterValue", "invalid NextToken")
			return
		}
		start = n
	}
	resp := describeResponse{Xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/", RequestID: "ec2sim"}
	s.mu.RLock()
	i := start
	for ; i < len(a.order) && len(resp.Reservations) < limit; i++ {
		inst := a.instances[a.order[i]]
		if !matches(inst, filters) {
			continue
		}
		resp.Reservations = append(resp.Reservations, reservationOf(inst, accountOf(a.arn)))
	}
	if i < len(a.order) {
		resp.NextToken = strconv.Itoa(i)
	}
	s.mu.RUnlock()
	s.pages.Add(1)
	writeXML(w, resp)
}

// filter is one Filter.N of the request.
type filter struct {
	name   string
	values []string
}

func parseFilters(form url.Values) ([]filter, error) {
	var out []filter
	for n := 1; ; n++ {
		name := form.Get(fmt.Sprintf("Filter.%d.Name", n))
		if name == "" {
			return out, nil
		}
		f := filter{name: name}
		for v := 1; ; v++ {
			val, ok := form[fmt.Sprintf("Filter.%d.Value.%d", n, v)]
			if !ok {
				break
			}
			f.values = append(f.values, val...)
		}
		switch {
		case name == "instance-state-name", name == "tag-key", strings.HasPrefix(name, "tag:"):
		default:
			return nil, fmt.Errorf("The filter '%s' is invalid", name)
		}
		out = append(out, f)
	}
}

// matches applies EC2's filter semantics: filters are ANDed, values of one filter ORed, tag keys
// and values case-sensitive with * and ? wildcards.
func matches(inst *Instance, filters []filter) bool {
	for _, f := range filters {
		if !matchesOne(inst, f) {
			return false
		}
	}
	return true
}

func matchesOne(inst *Instance, f filter) bool {
	switch {
	case f.name == "instance-state-name":
		return anyGlob(f.values, inst.State)
	case f.name == "tag-key":
		for k := range inst.Tags {
			if anyGlob(f.values, k) {
				return true
			}
		}
		return false
	default:
		v, ok := inst.Tags[strings.TrimPrefix(f.name, "tag:")]
		return ok && anyGlob(f.values, v)
	}
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches s against p, where * is any run and ? any one character (EC2 filter wildcards;
// `\*` and `\?` are literal).
func glob(p, s string) bool {
	pr, sr := []rune(p), []rune(s)
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(sr) {
		switch {
		case pi < len(pr) && pr[pi] == '\\' && pi+1 < len(pr) && pr[pi+1] == sr[si]:
			pi += 2
			si++
		case pi < len(pr) && (pr[pi] == '?' || (pr[pi] == sr[si] && pr[pi] != '*' && pr[pi] != '\\')):
			pi++
			si++
		case pi < len(pr) && pr[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pr) && pr[pi] == '*' {
		pi++
	}
	return pi == len(pr)
}

// XML shapes of the answers (EC2 query protocol, 2016-11-15).

type describeResponse struct {
	XMLName      xml.Name      `xml:"DescribeInstancesResponse"`
	Xmlns        string        `xml:"xmlns,attr"`
	RequestID    string        `xml:"requestId"`
	Reservations []reservation `xml:"reservationSet>item"`
	NextToken    string        `xml:"nextToken,omitempty"`
}

type reservation struct {
	ID        string         `xml:"reservationId"`
	OwnerID   string         `xml:"ownerId"`
	Instances []instanceItem `xml:"instancesSet>item"`
}

type instanceItem struct {
	ID        string    `xml:"instanceId"`
	State     stateItem `xml:"instanceState"`
	PrivateIP string    `xml:"privateIpAddress,omitempty"`
	Placement placement `xml:"placement"`
	Tags      []tagItem `xml:"tagSet>item"`
}

type stateItem struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type placement struct {
	AZ string `xml:"availabilityZone"`
}

type tagItem struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func reservationOf(inst *Instance, owner string) reservation {
	it := instanceItem{ID: inst.ID, State: stateItem{Code: stateCodes[inst.State], Name: inst.State}, PrivateIP: inst.PrivateIP, Placement: placement{AZ: inst.AZ}}
	for _, k := range slices.Sorted(maps.Keys(inst.Tags)) {
		it.Tags = append(it.Tags, tagItem{Key: k, Value: inst.Tags[k]})
	}
	return reservation{ID: "r-" + strings.TrimPrefix(inst.ID, "i-"), OwnerID: owner, Instances: []instanceItem{it}}
}

type callerIdentityResponse struct {
	XMLName xml.Name             `xml:"GetCallerIdentityResponse"`
	Xmlns   string               `xml:"xmlns,attr"`
	Result  callerIdentityResult `xml:"GetCallerIdentityResult"`
	Meta    responseMetadata     `xml:"ResponseMetadata"`
}

type callerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// errorResponse is EC2's error shape (STS clients read the code from it as well).
type errorResponse struct {
	XMLName   xml.Name  `xml:"Response"`
	Errors    []errItem `xml:"Errors>Error"`
	RequestID string    `xml:"RequestID"`
}

type errItem struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	WriteEC2Error(w, status, code, msg, "ec2sim")
}

// WriteEC2Error answers with HTTP status and EC2's error document (code, message, request id),
// as the AWS SDK's EC2 client reads it.
func WriteEC2Error(w http.ResponseWriter, status int, code, msg, requestID string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(errorResponse{Errors: []errItem{{Code: code, Message: msg}}, RequestID: requestID})
}

func writeXML(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", errors.Join(errors.New("encode the answer"), err).Error())
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}
