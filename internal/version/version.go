// Package version is the build's version, set by the Makefile and the image build through -ldflags -X.
package version

import (
	"fmt"
	"runtime"
)

// Set by -ldflags -X github.com/ec2guard/ec2guard/internal/version.version=... (and .commit,
// .buildDate); never written at run time.
var (
	version   = "dev"
	commit    = "unknown"
	buildDate = "unknown"
)

// Info is what a binary says about its build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// Get returns the build's version information.
func Get() Info {
	return Info{Version: version, Commit: commit, BuildDate: buildDate, GoVersion: runtime.Version()}
}

// String renders e.g. "ec2guard v1.2.3 (commit abc, built 2026-01-02T03:04:05Z, go1.26.0)".
func (i Info) String() string {
	return fmt.Sprintf("ec2guard %s (commit %s, built %s, %s)", i.Version, i.Commit, i.BuildDate, i.GoVersion)
}
