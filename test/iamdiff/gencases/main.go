// Command gencases writes the differential test's generated IAM cases as JSON Lines (the
// `ec2guard simulate --batch` case format, docs/cli.md), for `ec2guard simulate --batch` and the oracle script alike:
//
//	go run ./test/iamdiff/gencases -n 5000 -seed 20261130 > cases.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/ec2guard/ec2guard/test/iamdiff"
)

func main() {
	n := flag.Int("n", 5000, "number of cases")
	seed := flag.Uint64("seed", 20261130, "generator seed")
	flag.Parse()
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	for _, c := range iamdiff.Generate(*seed, *n) {
		if err := enc.Encode(c); err != nil {
			fmt.Fprintln(os.Stderr, "gencases:", err)
			os.Exit(1)
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "gencases:", err)
		os.Exit(1)
	}
}
