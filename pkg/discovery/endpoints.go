package discovery

import (
	"cmp"
	"slices"

	"github.com/ec2guard/ec2guard/pkg/discovered"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// Endpoint is one instance as published for an Upstream.
type Endpoint struct {
	InstanceID string
	Address    string
	Zone       string
	Port       int32
}

// BuildEndpoints turns the instances an Upstream selects into endpoints, sorted by instance ID:
//   - address: the private IPv4, or the public one with publicIp: true; an instance without it is
//     skipped;
//   - port: spec.port (default 80); when a port tag is in effect (annotation
//     ec2guard.io/port-tag or --port-tag), an instance carrying that tag uses its value; a value
//     that is not a port 1–65535 skips the instance; an instance without the tag keeps spec.port;
//   - zone: the instance's availability zone.
func BuildEndpoints(t *Target, ix *Index, selected []int32) ([]Endpoint, []discovered.Skip) {
	eps := make([]Endpoint, 0, len(selected))
	var skips []discovered.Skip
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
	slices.SortFunc(skips, func(a, b discovered.Skip) int { return cmp.Compare(a.InstanceID, b.InstanceID) })
	return eps, skips
}

func endpointFor(t *Target, inst *ec2api.Instance) (Endpoint, discovered.Skip, bool) {
	ep := Endpoint{InstanceID: inst.ID, Zone: inst.AvailabilityZone, Port: t.Port()}
	if t.Upstream.Spec.PublicIP {
		ep.Address = inst.PublicIPv4
		if ep.Address == "" {
			return ep, discovered.Skip{InstanceID: inst.ID, Reason: discovered.SkipNoPublicIPv4, Detail: "publicIp is true but the instance has no public IPv4 address"}, false
		}
	} else {
		ep.Address = inst.PrivateIPv4
		if ep.Address == "" {
			return ep, discovered.Skip{InstanceID: inst.ID, Reason: discovered.SkipNoPrivateIPv4, Detail: "the instance has no private IPv4 address"}, false
		}
	}
	if t.PortTag != "" {
		if v, ok := inst.Tags[t.PortTag]; ok {
			p, err := ec2.ParsePortTagValue(v)
			if err != nil {
				return ep, discovered.Skip{InstanceID: inst.ID, Reason: discovered.SkipBadPortTag, Detail: "tag " + t.PortTag + ": " + err.Error()}, false
			}
			ep.Port = int32(p)
		}
	}
	return ep, discovered.Skip{}, true
}
