package version

import "strings"

// Requested reports whether args (a command line without the program name) ask for the version:
// -version or --version (optionally =true), before any "--". The commands check it before parsing
// their other flags, so `--version` works whatever else is on the command line and needs no
// kubeconfig. A flag value spelled exactly "--version" is read as the request too.
func Requested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "version" {
			continue
		}
		if !hasValue || value == "true" || value == "1" {
			return true
		}
	}
	return false
}
