// Command gen writes docs/operations.md (run by `go generate ./internal/opsdoc`).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ec2guard/ec2guard/internal/opsdoc"
)

func main() {
	root := flag.String("root", "../..", "repository root")
	out := flag.String("out", "../../docs/operations.md", "file to write")
	flag.Parse()
	doc, err := opsdoc.Generate(context.Background(), *root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "opsdoc: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "opsdoc: %v\n", err)
		os.Exit(1)
	}
}
