package codes

import (
	"fmt"
	"strconv"
	"strings"
)

// Check names a group of rules that share one enforcement action in the webhook (its
// --enforce-CHECK flag).
type Check string

// Action is what a failed check does to an admission request.
type Action string

// The enforcement actions.
const (
	// Deny rejects the request with the problem in the denial message.
	Deny Action = "deny"
	// Warn admits the request and returns the problem as a warning (kubectl prints it).
	Warn Action = "warn"
	// Off ignores the problem (it is still counted in the metrics with outcome "off").
	Off Action = "off"
)

// The checks, in the order the validating webhook runs them.
const (
	CheckSpec                Check = "spec"
	CheckSecret              Check = "secret"
	CheckSecretAccess        Check = "secret-access"
	CheckCredentials         Check = "credentials"
	CheckIAMDeny             Check = "iam-deny"
	CheckIAMUnknown          Check = "iam-unknown"
	CheckPermissiveNoFilters Check = "permissive-no-filters"
)

// CheckInfo documents one check: its default enforcement action and what it covers. The codes it
// covers are the rules whose Check it is (Check.Codes).
type CheckInfo struct {
	Check   Check
	Default Action
	// Covers says what the check checks (without its codes).
	Covers string
}

// Checks returns every check in the order the validating webhook runs them.
func Checks() []CheckInfo {
	return []CheckInfo{
		{CheckSpec, Deny, "the Upstream's EC2 spec: its shape, filters, region, roleArn, port and secretRef"},
		{CheckSecret, Deny, "the referenced Secret exists, is readable by ec2guard and holds well-formed credentials"},
		{CheckSecretAccess, Deny, "the request may use the credentials the Upstream names: a cross-namespace secretRef needs the requesting user to be allowed to get that Secret and the Secret to opt in to the Upstream's namespace; no secretRef (the pod's own identity) needs the namespace in --pod-identity-namespaces"},
		{CheckCredentials, Deny, "AWS accepts the access key; roleArn can be assumed"},
		{CheckIAMDeny, Deny, "the principal may call ec2:DescribeInstances in the Upstream's region (the IAM engine's findings follow a denial)"},
		{CheckIAMUnknown, Warn, "the IAM decision is known within --iam-deadline; the decision sources agree"},
		{CheckPermissiveNoFilters, Warn, "the Upstream is not in the consistency class permissive-credentials-no-filters"},
	}
}

// Info returns c's documentation (ok false for an unknown check).
func (c Check) Info() (CheckInfo, bool) {
	for _, ci := range Checks() {
		if ci.Check == c {
			return ci, true
		}
	}
	return CheckInfo{}, false
}

// Default is c's default enforcement action (Deny for an unknown check: fail closed).
func (c Check) Default() Action {
	if ci, ok := c.Info(); ok {
		return ci.Default
	}
	return Deny
}

// Codes returns the codes of the rules in check c, sorted.
func (c Check) Codes() []Code {
	var out []Code
	for _, r := range Rules() {
		if r.Check == c {
			out = append(out, r.Code)
		}
	}
	return out
}

// CodeList renders c's codes for help texts, runs of consecutive codes as ranges:
// "EC2G301-EC2G310, EC2G403, EC2G404".
func (c Check) CodeList() string { return List(c.Codes()) }

// List renders codes (sorted) with runs of three or more consecutive codes as ranges.
func List(cs []Code) string {
	var parts []string
	for i := 0; i < len(cs); {
		j := i
		for j+1 < len(cs) && next(cs[j]) == cs[j+1] {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, string(cs[i])+"-"+string(cs[j]))
		case j == i+1:
			parts = append(parts, string(cs[i]), string(cs[j]))
		default:
			parts = append(parts, string(cs[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// next is the code numbered one after c ("" when c is not EC2Gnnn).
func next(c Code) Code {
	n, err := strconv.Atoi(strings.TrimPrefix(string(c), "EC2G"))
	if err != nil || !strings.HasPrefix(string(c), "EC2G") {
		return ""
	}
	return Code(fmt.Sprintf("EC2G%03d", n+1))
}
