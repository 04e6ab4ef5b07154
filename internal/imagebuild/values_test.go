package imagebuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPinValuesChangesOnlyTheImageFields pins the real chart's values: exactly the six image
// scalars change, every comment and blank line stays.
func TestPinValuesChangesOnlyTheImageFields(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "charts", "ec2guard", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	d1 := "sha256:" + strings.Repeat("a", 64)
	d2 := "sha256:" + strings.Repeat("b", 64)
	err = PinValues(path, map[string]ImagePin{
		"webhook":    {Repository: "reg.example:5000/team/webhook", Tag: "1.2.3", Digest: d1},
		"discoverer": {Repository: "reg.example:5000/team/discoverer", Tag: "1.2.3", Digest: d2},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, after := strings.Split(string(src), "\n"), strings.Split(string(got), "\n")
	if len(before) != len(after) {
		t.Fatalf("pinning changed the number of lines: %d -> %d", len(before), len(after))
	}
	var changed []string
	for i := range before {
		if before[i] != after[i] {
			changed = append(changed, strings.TrimSpace(after[i]))
		}
	}
	want := []string{
		`repository: "reg.example:5000/team/webhook"`, `tag: "1.2.3"`, `digest: "` + d1 + `"`,
		`repository: "reg.example:5000/team/discoverer"`, `tag: "1.2.3"`, `digest: "` + d2 + `"`,
	}
	if strings.Join(changed, "\n") != strings.Join(want, "\n") {
		t.Errorf("changed lines:\n%s\nwant:\n%s", strings.Join(changed, "\n"), strings.Join(want, "\n"))
	}
}

func TestPinValuesNamesAMissingField(t *testing.T) {
	path := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(path, []byte("webhook:\n  image:\n    repository: x\n    tag: \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := PinValues(path, map[string]ImagePin{"webhook": {Repository: "r", Tag: "1.0.0", Digest: "sha256:00"}})
	if err == nil || !strings.Contains(err.Error(), "webhook.image.digest is missing") {
		t.Fatalf("err = %v, want one naming webhook.image.digest", err)
	}
}
