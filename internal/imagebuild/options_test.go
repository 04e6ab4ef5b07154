package imagebuild

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestBuildRejectsBadOptions(t *testing.T) {
	good := BuildOptions{ModuleRoot: ".", OutDir: t.TempDir(), Version: "v1.2.3", Commit: "0123abcd", Created: time.Unix(1, 0)}
	for _, tc := range []struct {
		name string
		edit func(*BuildOptions)
		want string
	}{
		{"version with a plus", func(o *BuildOptions) { o.Version = "1.2.3+meta" }, `version "1.2.3+meta"`},
		{"empty version", func(o *BuildOptions) { o.Version = "" }, `version ""`},
		{"commit", func(o *BuildOptions) { o.Commit = "HEAD; rm" }, `commit "HEAD; rm"`},
		{"created", func(o *BuildOptions) { o.Created = time.Time{} }, "created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			_, err := Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestReleaseRejectsBadOptions(t *testing.T) {
	good := ReleaseOptions{Registry: "127.0.0.1:5000/x", Version: "1.2.3", ImagesDir: t.TempDir(), Chart: "c", Helm: "h"}
	for _, tc := range []struct {
		name string
		edit func(*ReleaseOptions)
		want string
	}{
		{"no registry", func(o *ReleaseOptions) { o.Registry = "" }, "REGISTRY is empty"},
		{"scheme", func(o *ReleaseOptions) { o.Registry = "https://ghcr.io/x" }, "without a scheme"},
		{"bad registry", func(o *ReleaseOptions) { o.Registry = "Bad Host/x" }, `REGISTRY "Bad Host/x"`},
		{"not semver", func(o *ReleaseOptions) { o.Version = "1.2" }, `VERSION "1.2"`},
		{"build metadata", func(o *ReleaseOptions) { o.Version = "1.2.3+b" }, `VERSION "1.2.3+b"`},
		{"no layouts", func(o *ReleaseOptions) {}, "run `make images`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			_, err := Release(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLDFlags(t *testing.T) {
	got := LDFlags("v1.2.3", "abc1234", time.Date(2026, 12, 7, 1, 2, 3, 0, time.FixedZone("x", 3600)))
	want := "-s -w -X github.com/ec2guard/ec2guard/internal/version.version=v1.2.3 -X github.com/ec2guard/ec2guard/internal/version.commit=abc1234 -X github.com/ec2guard/ec2guard/internal/version.buildDate=2026-12-07T00:02:03Z"
	if got != want {
		t.Errorf("LDFlags = %q, want %q", got, want)
	}
}
