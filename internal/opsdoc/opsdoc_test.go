package opsdoc

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestOperationsDocUpToDate: docs/operations.md is what the generator makes from the code today.
func TestOperationsDocUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/operations.md is stale: run `go generate ./internal/opsdoc`")
	}
}

func TestParseHelp(t *testing.T) {
	help := "Usage: x\n  -a duration\n    \tthe a (default 2s)\n  -b\tbool flag\n  -c string\n    \tthe c\n    \tcontinued\n"
	flags, err := ParseHelp([]byte(help))
	if err != nil {
		t.Fatal(err)
	}
	if len(flags) != 2 || flags[0] != (Flag{Name: "a", Type: "duration", Default: "2s", Usage: "the a"}) || flags[1].Name != "c" || flags[1].Usage != "the c continued" {
		t.Errorf("ParseHelp = %+v", flags)
	}
	if _, err := ParseHelp([]byte("nothing")); err == nil {
		t.Error("ParseHelp accepted output without flags")
	}
}

func TestMetricsFromRegistries(t *testing.T) {
	ms, err := Metrics()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
		if !strings.HasPrefix(m.Name, "ec2guard_") || m.Help == "" || m.Type == "untyped" {
			t.Errorf("metric %+v: want an ec2guard_ name, help and a type", m)
		}
	}
	for _, want := range []string{"ec2guard_admission_requests_total", "ec2guard_discoverer_refreshes_total", "ec2guard_webhook_certificate_expiry_timestamp_seconds"} {
		if !slices.Contains(names, want) {
			t.Errorf("metric %s missing from %v", want, names)
		}
	}
}
