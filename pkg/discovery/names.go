package discovery

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// maxServiceName is the longest Service name (a DNS-1035 label).
const maxServiceName = 63

// hashSuffixLen is the length of the hash that ends a rewritten Service name.
const hashSuffixLen = 10

// ServiceName is the name of the selector-less Service published for an Upstream: "ec2-" and the
// Upstream's name. Upstream names are DNS-1123 subdomains (they may hold dots), Service names
// DNS-1035 labels: a name with dots or one that would be too long gets its dots replaced, is cut
// and ends in "-" and a hash of the original. A name that already ends like that ("-" and ten
// hex digits) is rewritten too, so it cannot take the Service of a rewritten name (an Upstream
// "web-prod-558e18b6a4" beside "web.prod"): distinct Upstreams of a namespace never share a
// Service.
func ServiceName(upstreamName string) string {
	name := "ec2-" + upstreamName
	if !strings.Contains(upstreamName, ".") && len(name) <= maxServiceName && !endsInHash(upstreamName) {
		return name
	}
	sum := sha256.Sum256([]byte(upstreamName))
	suffix := hex.EncodeToString(sum[:])[:hashSuffixLen]
	name = strings.ReplaceAll(name, ".", "-")
	if len(name) > maxServiceName-len(suffix)-1 {
		name = name[:maxServiceName-len(suffix)-1]
	}
	return strings.TrimRight(name, "-") + "-" + suffix
}

// endsInHash reports whether name ends in "-" and hashSuffixLen lower-case hex digits, the way a
// rewritten name does.
func endsInHash(name string) bool {
	if len(name) < hashSuffixLen+1 || name[len(name)-hashSuffixLen-1] != '-' {
		return false
	}
	for _, c := range name[len(name)-hashSuffixLen:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SliceName is the name of the n-th EndpointSlice (from 0) of a Service for one port:
// "<service>-<port>-<n>".
func SliceName(service string, port int32, n int) string {
	return service + "-" + strconv.Itoa(int(port)) + "-" + strconv.Itoa(n)
}
