package policycheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// SimulationCase is one line of the batch format of `ec2guard simulate --batch` (docs/cli.md).
type SimulationCase struct {
	ID                  string              `json:"id"`
	Request             Request             `json:"request"`
	IdentityPolicies    []json.RawMessage   `json:"identityPolicies"`
	PermissionsBoundary json.RawMessage     `json:"permissionsBoundary"`
	SCPs                [][]json.RawMessage `json:"scps"`
	RCPs                [][]json.RawMessage `json:"rcps"`
	ResourcePolicy      json.RawMessage     `json:"resourcePolicy"`
	SessionPolicy       json.RawMessage     `json:"sessionPolicy"`
}

// SimulationResult is one output line of the batch format.
type SimulationResult struct {
	ID                 string         `json:"id"`
	Decision           string         `json:"decision,omitempty"`
	MatchedStatements  []StatementRef `json:"matchedStatements,omitempty"`
	Findings           []Finding      `json:"findings,omitempty"`
	IgnoredContextKeys []string       `json:"ignoredContextKeys,omitempty"`
	Error              string         `json:"error,omitempty"`
}

// ParseSimulationCase decodes one batch line. The id is returned even when the rest is invalid,
// so the error line can name the case.
func ParseSimulationCase(line []byte) (SimulationCase, error) {
	var c SimulationCase
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		var id struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(line, &id)
		c.ID = id.ID
		return c, fmt.Errorf("not a simulation case: %s", jsonErrText(err))
	}
	return c, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// PolicySet parses and compiles the case's policies, named after their place in the case
// ("identityPolicies[0]", "scps[1][0]", ...).
func (c SimulationCase) PolicySet() (*PolicySet, error) {
	var in PolicySetInput
	parse := func(name string, raw json.RawMessage) (NamedPolicy, error) {
		p, err := ParsePolicy(name, raw)
		if err != nil {
			return NamedPolicy{}, err
		}
		return NamedPolicy{Name: name, Policy: p}, nil
	}
	optional := func(name string, raw json.RawMessage) (*NamedPolicy, error) {
		if isNull(raw) {
			return nil, nil
		}
		np, err := parse(name, raw)
		if err != nil {
			return nil, err
		}
		return &np, nil
	}
	for i, raw := range c.IdentityPolicies {
		np, err := parse(fmt.Sprintf("identityPolicies[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		in.Identity = append(in.Identity, np)
	}
	var err error
	if in.Boundary, err = optional("permissionsBoundary", c.PermissionsBoundary); err != nil {
		return nil, err
	}
	if in.Resource, err = optional("resourcePolicy", c.ResourcePolicy); err != nil {
		return nil, err
	}
	if in.Session, err = optional("sessionPolicy", c.SessionPolicy); err != nil {
		return nil, err
	}
	levels := func(field string, raw [][]json.RawMessage) ([][]NamedPolicy, error) {
		var out [][]NamedPolicy
		for i, level := range raw {
			l := []NamedPolicy{}
			for j, p := range level {
				np, err := parse(fmt.Sprintf("%s[%d][%d]", field, i, j), p)
				if err != nil {
					return nil, err
				}
				l = append(l, np)
			}
			out = append(out, l)
		}
		return out, nil
	}
	if in.SCPs, err = levels("scps", c.SCPs); err != nil {
		return nil, err
	}
	if in.RCPs, err = levels("rcps", c.RCPs); err != nil {
		return nil, err
	}
	return NewPolicySet(in)
}

// Simulate evaluates one case; a case that cannot be evaluated gets an Error.
func (e *Engine) Simulate(ctx context.Context, c SimulationCase) SimulationResult {
	ps, err := c.PolicySet()
	if err != nil {
		return SimulationResult{ID: c.ID, Error: err.Error()}
	}
	if c.Request.Principal == "" {
		return SimulationResult{ID: c.ID, Error: "request.principal: is required"}
	}
	d, err := e.Evaluate(ctx, ps, c.Request)
	if err != nil {
		return SimulationResult{ID: c.ID, Error: err.Error()}
	}
	return SimulationResult{
		ID:                 c.ID,
		Decision:           d.Result,
		MatchedStatements:  d.MatchedStatements,
		Findings:           d.Findings,
		IgnoredContextKeys: d.IgnoredContextKeys,
	}
}

// MarshalJSON writes {"id","error"} for a failed case and the full decision line otherwise
// (matchedStatements and findings always present, possibly empty).
func (r SimulationResult) MarshalJSON() ([]byte, error) {
	if r.Error != "" {
		return json.Marshal(struct {
			ID    string `json:"id"`
			Error string `json:"error"`
		}{r.ID, r.Error})
	}
	type full struct {
		ID                 string         `json:"id"`
		Decision           string         `json:"decision"`
		MatchedStatements  []StatementRef `json:"matchedStatements"`
		Findings           []Finding      `json:"findings"`
		IgnoredContextKeys []string       `json:"ignoredContextKeys,omitempty"`
	}
	f := full{ID: r.ID, Decision: r.Decision, MatchedStatements: r.MatchedStatements, Findings: r.Findings, IgnoredContextKeys: r.IgnoredContextKeys}
	if f.MatchedStatements == nil {
		f.MatchedStatements = []StatementRef{}
	}
	if f.Findings == nil {
		f.Findings = []Finding{}
	}
	return json.Marshal(f)
}
