package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A small run completes every request on every path without errors (no timing is asserted).
func TestRunSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results, err := run(ctx, options{requests: 40, concurrency: 4, timeout: time.Minute, format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range results {
		paths = append(paths, r.Path)
		if r.Requests != 40 || r.Errors != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.Throughput <= 0 {
			t.Errorf("%s: %+v", r.Path, r)
		}
	}
	if strings.Join(paths, ",") != "/empty,/validate-upstream,/mutate-upstream" {
		t.Errorf("paths %v", paths)
	}
	var out bytes.Buffer
	if err := report(&out, options{requests: 40, concurrency: 4, format: "markdown"}, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| /validate-upstream | 40 | 0 |") {
		t.Errorf("report:\n%s", out.String())
	}
	out.Reset()
	if err := report(&out, options{format: "json"}, results); err != nil || !json.Valid(out.Bytes()) {
		t.Errorf("json report: %v\n%s", err, out.String())
	}
}

func TestParseFlags(t *testing.T) {
	if _, err := parseFlags([]string{"-n=0"}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "-n 0") {
		t.Errorf("-n 0: %v", err)
	}
	if _, err := parseFlags([]string{"-o=xml"}, &bytes.Buffer{}); err == nil {
		t.Error("-o xml accepted")
	}
	o, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil || o.requests != 5000 || o.concurrency != 16 || o.format != "markdown" {
		t.Errorf("defaults %+v, %v", o, err)
	}
}
