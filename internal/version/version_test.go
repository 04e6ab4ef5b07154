package version

import (
	"encoding/json"
	"runtime"
	"testing"
)

func TestGetDefaults(t *testing.T) {
	got := Get()
	want := Info{Version: "dev", Commit: "unknown", BuildDate: "unknown", GoVersion: runtime.Version()}
	if got != want {
		t.Fatalf("Get() = %+v, want %+v", got, want)
	}
}

func TestStringAndJSON(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "abc1234", BuildDate: "2026-12-07T00:00:00Z", GoVersion: "go1.26.8"}
	if s, want := i.String(), "v1.2.3 (commit abc1234, built 2026-12-07T00:00:00Z, go1.26.8)"; s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
	b, err := json.Marshal(i)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"version":"v1.2.3","commit":"abc1234","buildDate":"2026-12-07T00:00:00Z","goVersion":"go1.26.8"}`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestRequested(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--version"}, true},
		{[]string{"-version"}, true},
		{[]string{"--log-level", "debug", "--version"}, true},
		{[]string{"--version=true"}, true},
		{[]string{"--version=false"}, false},
		{[]string{"--", "--version"}, false},
		{[]string{"version"}, false},
		{[]string{"--versions"}, false},
		{[]string{"---version"}, false},
	} {
		if got := Requested(tc.args); got != tc.want {
			t.Errorf("Requested(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
