package ec2

import (
	_ "embed" // partitions.json
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/agnivade/levenshtein"
)

// partitionsJSON is the AWS SDK for Go v2's partition metadata, copied verbatim (Apache-2.0) from
// github.com/aws/aws-sdk-go-v2/internal/endpoints/awsrulesfn/partitions.json of the SDK version in
// go.mod. That package is internal and no public SDK API exposes the region patterns (the public
// endpoint resolvers fall back to the "aws" partition for any unknown region, so they cannot tell a
// bad region from a good one). `go generate ./pkg/ec2` refreshes the copy after an SDK upgrade, and
// TestPartitionsMatchSDK fails when it is stale.
//
//go:generate sh -c "cp \"$(go list -m -f '{{.Dir}}' github.com/aws/aws-sdk-go-v2)/internal/endpoints/awsrulesfn/partitions.json\" partitions.json && chmod 644 partitions.json"
//go:embed partitions.json
var partitionsJSON []byte

// Partition is one AWS partition (aws, aws-cn, aws-us-gov, …) from the SDK's partition metadata.
type Partition struct {
	ID        string
	DNSSuffix string
	// ImplicitGlobalRegion is the region the partition's global endpoints live in, e.g. us-east-1.
	ImplicitGlobalRegion string
	// RegionPattern is the partition's region regular expression, e.g. `^cn\-\w+\-\d+$`.
	RegionPattern string
	// Regions maps each region the SDK knows in this partition to its description.
	Regions map[string]string

	re *regexp.Regexp
}

// RegionInfo is what the partition metadata says about a region string.
type RegionInfo struct {
	Region string
	// Partition is the partition ID ("aws", "aws-cn", …) when the region belongs to one.
	Partition string
	// Valid: the region matches a partition's region pattern (so it can be an EC2 region).
	Valid bool
	// Known: the region is listed in the partition's regions (implies Valid).
	Known bool
	// Pseudo: the name is a global pseudo-region such as "aws-global", listed by the SDK but not an
	// EC2 region.
	Pseudo bool
	// Description is the SDK's description of a known region, e.g. "US East (N. Virginia)".
	Description string
}

type partitionsFile struct {
	Partitions []struct {
		ID      string `json:"id"`
		Outputs struct {
			DNSSuffix            string `json:"dnsSuffix"`
			ImplicitGlobalRegion string `json:"implicitGlobalRegion"`
		} `json:"outputs"`
		RegionRegex string `json:"regionRegex"`
		Regions     map[string]struct {
			Description string `json:"description"`
		} `json:"regions"`
	} `json:"partitions"`
}

// loadedPartitions parses the embedded metadata once; the result is never modified.
var loadedPartitions = sync.OnceValues(func() ([]Partition, error) {
	return parsePartitions(partitionsJSON)
})

func parsePartitions(data []byte) ([]Partition, error) {
	var f partitionsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse AWS partition metadata: %w", err)
	}
	if len(f.Partitions) == 0 {
		return nil, fmt.Errorf("parse AWS partition metadata: no partitions")
	}
	out := make([]Partition, 0, len(f.Partitions))
	for _, p := range f.Partitions {
		re, err := regexp.Compile(p.RegionRegex)
		if err != nil {
			return nil, fmt.Errorf("parse AWS partition metadata: partition %s: region regex: %w", p.ID, err)
		}
		regions := make(map[string]string, len(p.Regions))
		for r, d := range p.Regions {
			regions[r] = d.Description
		}
		out = append(out, Partition{ID: p.ID, DNSSuffix: p.Outputs.DNSSuffix, ImplicitGlobalRegion: p.Outputs.ImplicitGlobalRegion, RegionPattern: p.RegionRegex, Regions: regions, re: re})
	}
	return out, nil
}

// partitions returns the parsed metadata. The embedded file is checked by tests, so a failure here is
// a build defect, not bad input.
func partitions() []Partition {
	ps, err := loadedPartitions()
	if err != nil {
		panic("ec2guard: embedded AWS partition metadata is corrupt: " + err.Error())
	}
	return ps
}

// Partitions returns the AWS partitions from the bundled SDK metadata (a copy; safe to modify).
func Partitions() []Partition {
	ps := partitions()
	out := make([]Partition, len(ps))
	for i, p := range ps {
		regions := make(map[string]string, len(p.Regions))
		for k, v := range p.Regions {
			regions[k] = v
		}
		p.Regions = regions
		out[i] = p
	}
	return out
}

// LookupRegion classifies a region string the way the AWS SDK assigns a region to a partition (listed
// regions first, then the region patterns), except that an unmatched region is reported as invalid
// instead of falling back to the "aws" partition.
func LookupRegion(region string) RegionInfo {
	info := RegionInfo{Region: region}
	ps := partitions()
	for _, p := range ps {
		if d, ok := p.Regions[region]; ok {
			info.Partition = p.ID
			info.Description = d
			if p.re.MatchString(region) {
				info.Valid, info.Known = true, true
			} else {
				info.Pseudo = true
			}
			return info
		}
	}
	for _, p := range ps {
		if p.re.MatchString(region) {
			info.Partition, info.Valid = p.ID, true
			return info
		}
	}
	return info
}

// IsPartition reports whether id is a partition in the bundled metadata.
func IsPartition(id string) bool {
	_, ok := lookupPartition(id)
	return ok
}

// lookupPartition returns the partition with this ID (shared: do not modify Regions).
func lookupPartition(id string) (Partition, bool) {
	for _, p := range partitions() {
		if p.ID == id {
			return p, true
		}
	}
	return Partition{}, false
}

// knownRegions returns every valid, known region, sorted.
func knownRegions() []string {
	var out []string
	for _, p := range partitions() {
		for r := range p.Regions {
			if p.re.MatchString(r) {
				out = append(out, r)
			}
		}
	}
	sort.Strings(out)
	return out
}

// suggestRegion proposes a valid region for a mistyped one, with a short reason, or "" if none.
func suggestRegion(region string) (suggestion, reason string) {
	trimmed := strings.TrimSpace(region)
	if trimmed != region && LookupRegion(trimmed).Valid {
		return trimmed, "remove the white space"
	}
	if l := strings.ToLower(trimmed); l != trimmed && LookupRegion(l).Valid {
		return l, "region codes are lower case"
	}
	l := strings.ToLower(trimmed)
	// An availability zone: us-east-1a, use1-az1 is not handled.
	if z := strings.TrimRightFunc(l, unicode.IsLetter); z != l && LookupRegion(z).Valid {
		return z, fmt.Sprintf("%s is an availability zone, not a region", trimmed)
	}
	// Missing dash before the number: us-east1.
	if i := strings.LastIndexFunc(l, func(r rune) bool { return !unicode.IsDigit(r) }); i >= 0 && i < len(l)-1 && l[i] != '-' {
		if c := l[:i+1] + "-" + l[i+1:]; LookupRegion(c).Valid {
			return c, "region codes have a dash before the number"
		}
	}
	best, bestD := "", 4
	for _, r := range knownRegions() {
		if d := levenshtein.ComputeDistance(l, r); d < bestD {
			best, bestD = r, d
		}
	}
	if best != "" {
		return best, "closest known region"
	}
	return "", ""
}
