package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// maxServiceName is the longest Service name (a DNS-1035 label).
const maxServiceName = 63

// ServiceName is the name of the selector-less Service published for an Upstream: "ec2-" and the
// Upstream's name. Upstream names are DNS-1123 subdomains (they may hold dots), Service names
// DNS-1035 labels: a name with dots or one that would be too long gets its dots replaced, is cut
// and ends in a hash of the original, so distinct Upstreams of a namespace never share a Service.
func ServiceName(upstreamName string) string {
	name := "ec2-" + upstreamName
	if !strings.Contains(upstreamName, ".") && len(name) <= maxServiceName {
		return name
	}
	sum := sha256.Sum256([]byte(upstreamName))
	suffix := hex.EncodeToString(sum[:])[:10]
	name = strings.ReplaceAll(name, ".", "-")
	if len(name) > maxServiceName-len(suffix)-1 {
		name = name[:maxServiceName-len(suffix)-1]
	}
	return strings.TrimRight(name, "-") + "-" + suffix
}

// SliceName is the name of the n-th EndpointSlice (from 0) of a Service for one port:
// "<service>-<port>-<n>".
func SliceName(service string, port int32, n int) string {
	return service + "-" + strconv.Itoa(int(port)) + "-" + strconv.Itoa(n)
}
