package discovery

import (
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
)

// naiveSelect is the baseline the index is measured and tested against: every instance through
// the Matcher, an exact match first, else Gloo's lowercased-key match.
func naiveSelect(instances []ec2api.Instance, m *ec2.Matcher) Selection {
	var sel Selection
	for i := range instances {
		switch tags := instances[i].Tags; {
		case m.Match(tags):
			sel.Exact = append(sel.Exact, int32(i))
		case m.MatchLowercasedKeys(tags):
			sel.LowercaseOnly = append(sel.LowercaseOnly, int32(i))
		}
	}
	return sel
}
