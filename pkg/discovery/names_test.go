package discovery

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestServiceName(t *testing.T) {
	if got := ServiceName("web"); got != "ec2-web" {
		t.Errorf("ServiceName(web) = %q", got)
	}
	names := []string{"a.b", "a-b", strings.Repeat("x", 59), strings.Repeat("x", 60), strings.Repeat("y", 253), "a.b.c-"[:5]}
	seen := map[string]string{}
	for _, n := range names {
		got := ServiceName(n)
		if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
			t.Errorf("ServiceName(%q) = %q is not a DNS-1035 label: %v", n, got, errs)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("ServiceName(%q) = ServiceName(%q) = %q", n, other, got)
		}
		seen[got] = n
	}
	if got := SliceName("ec2-web", 8080, 2); got != "ec2-web-8080-2" {
		t.Errorf("SliceName = %q", got)
	}
}

// TestServiceNameNoCollisionWithHashedForm: an Upstream may be named exactly like the rewritten
// form of another one's name (review finding: "web.prod" and "web-prod-558e18b6a4"); both get
// their own Service.
func TestServiceNameNoCollisionWithHashedForm(t *testing.T) {
	for _, n := range []string{"web.prod", "a.b.c", strings.Repeat("z", 70), strings.Repeat("q", 59) + ".x"} {
		rewritten := strings.TrimPrefix(ServiceName(n), "ec2-")
		if rewritten == n {
			t.Fatalf("ServiceName(%q) was not rewritten; the test's input is wrong", n)
		}
		if a, b := ServiceName(n), ServiceName(rewritten); a == b {
			t.Errorf("ServiceName(%q) = ServiceName(%q) = %q", n, rewritten, a)
		}
		if errs := validation.IsDNS1035Label(ServiceName(rewritten)); len(errs) > 0 {
			t.Errorf("ServiceName(%q) = %q: %v", rewritten, ServiceName(rewritten), errs)
		}
	}
	// Names that do not look rewritten keep their plain Service name.
	for _, n := range []string{"web", "web-prod", "web-prod-1234", "api-0123456789x"} {
		if got := ServiceName(n); got != "ec2-"+n {
			t.Errorf("ServiceName(%q) = %q, want ec2-%s", n, got, n)
		}
	}
}
