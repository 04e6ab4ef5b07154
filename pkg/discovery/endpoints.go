package discovery

import (
	"cmp"
	"slices"

	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// Reasons an instance that an Upstream's filters select is not published.
const (
	SkipNoPrivateIPv4 = "no-private-ipv4"
	SkipNoPublicIPv4  = "no-public-ipv4"
	SkipBadPortTag    = "bad-port-tag"
)

// Endpoint is one instance as published for an Upstream.
type Endpoint struct {
	InstanceID string
	Address    string
	Zone       string
	Port       int32
}

// Skip is a selected instance that is not published, with the reason.
type Skip struct {
	InstanceID string `json:"id"`
	// Reason is one of the Skip* constants.
	Reason string `json:"reason"`
	// Detail says what exactly is wrong (e.g. the bad port tag value).
	Detail string `json:"detail,omitempty"`
}

// BuildEndpoints turns the instances an Upstream selects into endpoints, sorted by instance ID:
//   - address: the private IPv4, or the public one with publicIp: true; an instance without it is
//     skipped;
//   - port: spec.port (default 80); when a port tag is in effect (annotation
//     ec2guard.io/port-tag or --port-tag), an instance carrying that tag uses its value; a value
//     that is not a port 1–65535 skips the instance; an instance without the tag keeps spec.port;
//   - zone: the instance's availability zone.
func BuildEndpoints(t *Target, ix *Index, selected []int32) ([]Endpoint, []Skip) {
	eps := make([]Endpoint, 0, len(selected))
	var skips []Skip
	for _, pos := range selected {
		inst := ix.Instance(pos)
		ep, skip, ok := endpointFor(t, inst)
		if !ok {
			skips = append(skips, skip)
			continue
		}
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b Endpoint) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	slices.SortFunc(skips, func(a, b Skip) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	return eps, skips
}

func endpointFor(t *Target, inst *ec2api.Instance) (Endpoint, Skip, bool) {
	ep := Endpoint{InstanceID: inst.ID, Zone: inst.AvailabilityZone, Port: t.Port()}
	if t.Upstream.Spec.PublicIP {
		ep.Address = inst.PublicIPv4
		if ep.Address == "" {
			return ep, Skip{InstanceID: inst.ID, Reason: SkipNoPublicIPv4, Detail: "publicIp is true but the instance has no public IPv4 address"}, false
		}
	} else {
		ep.Address = inst.PrivateIPv4
		if ep.Address == "" {
			return ep, Skip{InstanceID: inst.ID, Reason: SkipNoPrivateIPv4, Detail: "the instance has no private IPv4 address"}, false
		}
	}
	if t.PortTag != "" {
		if v, ok := inst.Tags[t.PortTag]; ok {
			p, err := ec2.ParsePortTagValue(v)
			if err != nil {
				return ep, Skip{InstanceID: inst.ID, Reason: SkipBadPortTag, Detail: "tag " + t.PortTag + ": " + err.Error()}, false
			}
			ep.Port = int32(p)
		}
	}
	return ep, Skip{}, true
}
