// Package version is the build's version, set by the Makefile and the image build through -ldflags -X.
package version

import (
	"fmt"
	"runtime"
)

// Set at link time:
//
//	-X github.com/ec2guard/ec2guard/internal/version.version=v1.2.3
//	-X github.com/ec2guard/ec2guard/internal/version.commit=<git commit>
//	-X github.com/ec2guard/ec2guard/internal/version.buildDate=<commit time, RFC 3339>
//
// They are variables only because -X can set nothing else; nothing assigns them at run time.
var (
	version   = "dev"
	commit    = "unknown"
	buildDate = "unknown"
)

// Info describes a build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// Get returns this binary's build information.
func Get() Info {
	return Info{Version: version, Commit: commit, BuildDate: buildDate, GoVersion: runtime.Version()}
}

// String is the one-line form --version prints, e.g.
// "v1.2.3 (commit abc1234, built 2026-12-07T00:00:00Z, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s)", i.Version, i.Commit, i.BuildDate, i.GoVersion)
}
