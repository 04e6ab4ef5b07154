package collect

import (
	"errors"
	"fmt"

	"github.com/ec2guard/ec2guard/pkg/policycheck"
)

// PolicySetInput parses the collected documents into the engine's input: the identity policies and
// the permissions boundary (the trust policy is a resource policy of the role, used only when
// evaluating sts:AssumeRole). Each policy is named by its origin; a document that does not parse is
// left out and reported in the joined error, so the caller can decide with the rest or give up.
func (p *Policies) PolicySetInput() (policycheck.PolicySetInput, error) {
	var in policycheck.PolicySetInput
	var errs []error
	for _, d := range p.Identity {
		np, err := d.NamedPolicy()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		in.Identity = append(in.Identity, np)
	}
	if p.PermissionsBoundary != nil {
		np, err := p.PermissionsBoundary.NamedPolicy()
		if err != nil {
			errs = append(errs, err)
		} else {
			in.Boundary = &np
		}
	}
	return in, errors.Join(errs...)
}

// NamedPolicy parses one collected document; its name says where it came from.
func (d Document) NamedPolicy() (policycheck.NamedPolicy, error) {
	name := d.Origin.String()
	pol, err := policycheck.ParsePolicy(name, []byte(d.JSON))
	if err != nil {
		return policycheck.NamedPolicy{}, fmt.Errorf("%s: %w", name, err)
	}
	return policycheck.NamedPolicy{Name: name, Policy: pol}, nil
}
