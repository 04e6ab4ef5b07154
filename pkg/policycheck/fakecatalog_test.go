package policycheck

import "strings"

// fakeCatalog is a small action catalog for unit tests: the real one (iamdata) is exercised by the
// engine tests that use DefaultCatalog and by the differential test.
type fakeCatalog struct{}

type fakeAction struct {
	wildcard bool
	keys     []string // lower-case; a trailing "/" is a prefix (tag templates)
}

var fakeActions = map[string]fakeAction{
	"ec2:describeinstances": {wildcard: true, keys: []string{"ec2:region"}},
	"ec2:describeregions":   {wildcard: true, keys: []string{"ec2:region"}},
	"ec2:startinstances":    {keys: []string{"ec2:region", "ec2:resourcetag/", "aws:resourcetag/", "ec2:instancetype"}},
	"ec2:createtags":        {keys: []string{"ec2:region", "aws:requesttag/", "aws:tagkeys", "ec2:createaction"}},
	"s3:getobject":          {keys: []string{"s3:prefix", "s3:existingobjecttag/"}},
	"s3:listallmybuckets":   {wildcard: true},
	"sts:assumerole":        {keys: []string{"sts:externalid", "aws:resourcetag/"}},
	"sts:getcalleridentity": {wildcard: true},
	"iam:getuser":           {keys: []string{"aws:resourcetag/"}},
}

var fakeTypes = map[string]string{
	"aws:tagkeys":                "ArrayOfString",
	"aws:principalorgpaths":      "ArrayOfString",
	"aws:calledvia":              "ArrayOfString",
	"aws:multifactorauthpresent": "Bool",
	"aws:securetransport":        "Bool",
	"aws:sourceip":               "IPAddress",
	"aws:currenttime":            "Date",
	"aws:epochtime":              "Date",
	"aws:multifactorauthage":     "Numeric",
	"aws:principalarn":           "ARN",
	"aws:sourcearn":              "ARN",
	"ec2:instancetype":           "String",
}

func (fakeCatalog) LookupAction(name string) (ActionMeta, bool) {
	a, ok := fakeActions[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return a, true
}

func (fakeCatalog) ConditionKeyType(key string) (string, bool) {
	if t, ok := fakeTypes[strings.ToLower(key)]; ok {
		return t, true
	}
	return "String", true
}

func (fakeCatalog) RCPSupported(service string) bool {
	switch service {
	case "s3", "sts", "kms", "sqs", "secretsmanager":
		return true
	}
	return false
}

func (a fakeAction) WildcardOnly() bool { return a.wildcard }

var tagGlobals = []string{"aws:resourcetag/", "aws:requesttag/", "aws:tagkeys"}

func (a fakeAction) SupportsConditionKey(key string) bool {
	k := strings.ToLower(key)
	for _, ak := range a.keys {
		if k == ak || (strings.HasSuffix(ak, "/") && strings.HasPrefix(k, ak) && len(k) > len(ak)) {
			return true
		}
	}
	if strings.HasPrefix(k, "aws:") {
		for _, t := range tagGlobals {
			if strings.HasPrefix(k, t) {
				return false
			}
		}
		return true
	}
	return false
}
