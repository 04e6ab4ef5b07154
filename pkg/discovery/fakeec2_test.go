package discovery

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// fakeEC2 answers DescribeInstances in the EC2 Query protocol, per region (read from the
// request's SigV4 credential scope), one reservation per instance, MaxResults reservations per
// page. A region can be made to fail with an AWS error code.
type fakeEC2 struct {
	srv *httptest.Server

	mu        sync.Mutex
	instances map[string][]ec2api.Instance // by region
	fail      map[string]string            // region -> error code
	calls     map[string]int               // region -> DescribeInstances requests
}

var credentialScope = regexp.MustCompile(`Credential=[^/]+/\d+/([^/]+)/`)

func newFakeEC2(t *testing.T) *fakeEC2 {
	t.Helper()
	f := &fakeEC2{instances: map[string][]ec2api.Instance{}, fail: map[string]string{}, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeEC2) set(region string, insts []ec2api.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[region] = slices.Clone(insts)
}

func (f *fakeEC2) update(region string, fn func([]ec2api.Instance) []ec2api.Instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.instances[region] = fn(f.instances[region])
}

func (f *fakeEC2) failWith(region, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if code == "" {
		delete(f.fail, region)
	} else {
		f.fail[region] = code
	}
}

func (f *fakeEC2) callCount(region string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[region]
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlInstance struct {
	InstanceID       string   `xml:"instanceId"`
	StateName        string   `xml:"instanceState>name"`
	PrivateIPAddress string   `xml:"privateIpAddress,omitempty"`
	IPAddress        string   `xml:"ipAddress,omitempty"`
	AZ               string   `xml:"placement>availabilityZone"`
	Tags             []xmlTag `xml:"tagSet>item"`
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlDescribe struct {
	XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
	RequestID    string           `xml:"requestId"`
	Reservations []xmlReservation `xml:"reservationSet>item"`
	NextToken    string           `xml:"nextToken,omitempty"`
}

func (f *fakeEC2) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("Action") != "DescribeInstances" {
		http.Error(w, "unsupported", http.StatusBadRequest)
		return
	}
	m := credentialScope.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "unsigned", http.StatusBadRequest)
		return
	}
	region := m[1]
	f.mu.Lock()
	f.calls[region]++
	code := f.fail[region]
	insts := slices.Clone(f.instances[region])
	f.mu.Unlock()
	if code != "" {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>%s</Code><Message>fake %s</Message></Error></Errors><RequestID>req-%d</RequestID></Response>`, code, code, f.callCount(region))
		return
	}
	size, _ := strconv.Atoi(r.Form.Get("MaxResults"))
	if size <= 0 {
		size = len(insts) + 1
	}
	start, _ := strconv.Atoi(r.Form.Get("NextToken"))
	out := xmlDescribe{RequestID: "req"}
	for i := start; i < len(insts) && i < start+size; i++ {
		inst := insts[i]
		xi := xmlInstance{InstanceID: inst.ID, StateName: inst.State, PrivateIPAddress: inst.PrivateIPv4, IPAddress: inst.PublicIPv4, AZ: inst.AvailabilityZone}
		if xi.StateName == "" {
			xi.StateName = "running"
		}
		for _, k := range slices.Sorted(maps.Keys(inst.Tags)) {
			xi.Tags = append(xi.Tags, xmlTag{Key: k, Value: inst.Tags[k]})
		}
		out.Reservations = append(out.Reservations, xmlReservation{ReservationID: "r-" + inst.ID, Instances: []xmlInstance{xi}})
	}
	if start+size < len(insts) {
		out.NextToken = strconv.Itoa(start + size)
	}
	w.Header().Set("Content-Type", "text/xml")
	_ = xml.NewEncoder(w).Encode(out)
}
