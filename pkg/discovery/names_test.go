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
