// Command gendoc writes docs/codes.md from the code declaration (run by go generate ./pkg/codes).
package main

import (
	"fmt"
	"os"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendoc FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], []byte(codes.Markdown()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "gendoc: %v\n", err)
		os.Exit(1)
	}
}
