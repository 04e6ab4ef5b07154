// Command ec2guard is the offline CLI: `check` gives the webhook's verdict for manifests and policy
// files, `simulate` runs the IAM engine, `report` renders consistency reports.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `ec2guard — checks Gloo EC2 Upstreams before they fail silently.

Usage:
  ec2guard check -f FILE [-f FILE...] [--policy FILE...] [-o text|json]
  ec2guard simulate --policy FILE... --action A --resource R [--context k=v...] [-o json]
  ec2guard simulate --batch FILE.jsonl
  ec2guard report (-f FILE... | [--kubeconfig PATH] [-n NS | -A]) [-o table|json|markdown|html]

Exit codes: 0 accepted, 1 rejected, 2 usage or input error.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "check":
		return runCheck(args[1:], stdin, stdout, stderr)
	case "simulate":
		return runSimulate(args[1:], stdin, stdout, stderr)
	case "report":
		return runReport(args[1:], stdin, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ec2guard: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
