package collect

import (
	"strings"
	"testing"
)

func TestPoliciesPolicySetInput(t *testing.T) {
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeInstances","Resource":"*"}]}`
	p := &Policies{
		Identity: []Document{
			{Origin: Origin{Type: Inline, AttachedTo: "user/gloo", Name: "ok"}, JSON: allow},
			{Origin: Origin{Type: Inline, AttachedTo: "user/gloo", Name: "broken"}, JSON: `{"Statement": [`},
		},
		PermissionsBoundary: &Document{Origin: Origin{Type: PermissionsBoundary, AttachedTo: "user/gloo", Name: "b"}, JSON: allow},
	}
	in, err := p.PolicySetInput()
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Errorf("error %v, want one naming the broken document", err)
	}
	if len(in.Identity) != 1 || !strings.Contains(in.Identity[0].Name, "ok") {
		t.Errorf("identity %+v, want only the parsable document", in.Identity)
	}
	if in.Boundary == nil || in.Boundary.Policy == nil {
		t.Errorf("boundary not carried over: %+v", in.Boundary)
	}
}
