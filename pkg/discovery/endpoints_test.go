package discovery

import (
	"slices"
	"testing"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

func target(t *testing.T, spec ec2.Spec, portTag string) *Target {
	t.Helper()
	m, err := spec.Matcher()
	if err != nil {
		t.Fatal(err)
	}
	return &Target{Upstream: &ec2.Upstream{Namespace: "ns", Name: "up", Spec: spec}, UID: "uid-1", Matcher: m, PortTag: portTag}
}

func TestBuildEndpoints(t *testing.T) {
	insts := []ec2api.Instance{
		{ID: "i-3", PrivateIPv4: "10.0.0.3", PublicIPv4: "54.0.0.3", AvailabilityZone: "us-east-1b", Tags: map[string]string{"port": "9090"}},
		{ID: "i-1", PrivateIPv4: "10.0.0.1", AvailabilityZone: "us-east-1a", Tags: map[string]string{}},
		{ID: "i-2", PublicIPv4: "54.0.0.2", Tags: map[string]string{"port": "http"}},
		{ID: "i-4", PrivateIPv4: "10.0.0.4", PublicIPv4: "54.0.0.4", Tags: map[string]string{"port": "0"}},
	}
	ix := NewIndex(insts)
	all := []int32{0, 1, 2, 3}

	eps, skips := BuildEndpoints(target(t, ec2.Spec{Region: "us-east-1", Port: 8080}, "port"), ix, all)
	wantEps := []Endpoint{
		{InstanceID: "i-1", Address: "10.0.0.1", Zone: "us-east-1a", Port: 8080}, // no port tag: spec.port
		{InstanceID: "i-3", Address: "10.0.0.3", Zone: "us-east-1b", Port: 9090}, // port tag
	}
	if !slices.Equal(eps, wantEps) {
		t.Errorf("private endpoints = %+v, want %+v", eps, wantEps)
	}
	if len(skips) != 2 || skips[0].InstanceID != "i-2" || skips[0].Reason != discovered.SkipNoPrivateIPv4 ||
		skips[1].InstanceID != "i-4" || skips[1].Reason != discovered.SkipBadPortTag {
		t.Errorf("skips = %+v, want i-2 no-private-ipv4, i-4 bad-port-tag", skips)
	}

	eps, skips = BuildEndpoints(target(t, ec2.Spec{Region: "us-east-1", PublicIP: true}, ""), ix, all)
	wantEps = []Endpoint{
		{InstanceID: "i-2", Address: "54.0.0.2", Port: 80},
		{InstanceID: "i-3", Address: "54.0.0.3", Zone: "us-east-1b", Port: 80},
		{InstanceID: "i-4", Address: "54.0.0.4", Port: 80},
	}
	if !slices.Equal(eps, wantEps) {
		t.Errorf("public endpoints = %+v, want %+v", eps, wantEps)
	}
	if len(skips) != 1 || skips[0].InstanceID != "i-1" || skips[0].Reason != discovered.SkipNoPublicIPv4 {
		t.Errorf("skips = %+v, want i-1 no-public-ipv4", skips)
	}
}
