// Package wire defines the layout of iamdata's embedded data file, shared by the generator that
// writes it and the iamdata package that reads it.
//
// The file is a multi-member gzip file: the first member holds one line of JSON with the Header,
// each further member one service's ServiceBody as one line of JSON. Header.Services locate the
// members (byte offsets relative to the end of the header member), so that a reader can
// decompress and decode the header alone and each service only when it is first used.
// `zcat FILE | jq .` shows it all.
package wire

// FileName is the name of the embedded data file.
const FileName = "iamdata.json.gz"

// Header lists the global condition keys and the services.
type Header struct {
	// GlobalConditionKeys are AWS's global condition keys. A key with a variable part is written
	// as a template, e.g. "aws:PrincipalTag/${TagKey}".
	GlobalConditionKeys []Key `json:"globalConditionKeys"`
	// Services are sorted by Prefix.
	Services []Service `json:"services"`
}

// Key is a condition key and its type (String, ARN, Bool, Numeric, Date, IPAddress,
// ArrayOfString, ...).
type Key struct {
	Key  string `json:"key"`
	Type string `json:"type"`
}

// Service is one service prefix, e.g. "ec2".
type Service struct {
	Prefix string `json:"prefix"`
	Name   string `json:"name"`
	// RCPSupported is true when resource control policies apply to the service.
	RCPSupported  bool  `json:"rcpSupported,omitempty"`
	ConditionKeys []Key `json:"conditionKeys"`
	// Offset and Length locate the gzip member holding the service's ServiceBody, relative to
	// the end of the header member.
	Offset int `json:"offset"`
	Length int `json:"length"`
}

// ServiceBody holds a service's resource types and actions.
type ServiceBody struct {
	ResourceTypes []ResourceType `json:"resourceTypes"`
	// Actions are sorted by lower-cased name.
	Actions []Action `json:"actions"`
}

// ResourceType is a resource type as the service defines it.
type ResourceType struct {
	Name          string   `json:"name"`
	ARN           string   `json:"arn"`
	ConditionKeys []string `json:"conditionKeys,omitempty"`
}

// Action is one IAM action.
type Action struct {
	Name          string           `json:"name"`
	AccessLevel   string           `json:"accessLevel,omitempty"`
	ResourceTypes []ActionResource `json:"resourceTypes,omitempty"`
	ConditionKeys []string         `json:"conditionKeys,omitempty"`
}

// ActionResource is a resource type as one action uses it. Name is the canonical name of one of
// the service's ResourceTypes.
type ActionResource struct {
	Name          string   `json:"name"`
	Required      bool     `json:"required,omitempty"`
	ConditionKeys []string `json:"conditionKeys,omitempty"`
}
