package main

import (
	"fmt"
	"io"
)

// runSimulate is built by the IAM engine issue (#4).
func runSimulate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "ec2guard simulate: not built yet (IAM engine issue #4)")
	return 2
}
