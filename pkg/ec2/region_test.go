package ec2

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// TestPartitionsMatchSDK fails when the embedded partitions.json differs from the one shipped in the
// AWS SDK version go.mod selects (run `go generate ./pkg/ec2` after an SDK upgrade).
func TestPartitionsMatchSDK(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go binary not on PATH; cannot locate the SDK module")
	}
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Fatalf("go list -m github.com/aws/aws-sdk-go-v2: %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("SDK module directory unknown (module not downloaded?)")
	}
	sdk, err := os.ReadFile(filepath.Join(dir, "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Fatalf("read SDK partitions.json: %v", err)
	}
	if !bytes.Equal(sdk, partitionsJSON) {
		t.Fatal("pkg/ec2/partitions.json is stale: run `go generate ./pkg/ec2`")
	}
}

// TestPartitionsAgreeWithPublicEndpointResolver cross-checks the embedded metadata with the SDK's
// public EC2 endpoint resolver: every known region resolves to an endpoint in its partition's DNS
// suffix.
func TestPartitionsAgreeWithPublicEndpointResolver(t *testing.T) {
	r := ec2.NewDefaultEndpointResolverV2()
	n := 0
	for _, p := range Partitions() {
		for region := range p.Regions {
			info := LookupRegion(region)
			if info.Pseudo {
				continue
			}
			ep, err := r.ResolveEndpoint(context.Background(), ec2.EndpointParameters{Region: aws.String(region)})
			if err != nil {
				t.Fatalf("%s: %v", region, err)
			}
			if !strings.HasSuffix(ep.URI.Host, "."+p.DNSSuffix) || !strings.Contains(ep.URI.Host, region) {
				t.Errorf("region %s (partition %s, suffix %s) resolves to %s", region, p.ID, p.DNSSuffix, ep.URI.Host)
			}
			n++
		}
	}
	if n < 30 {
		t.Errorf("only %d regions checked", n)
	}
}

func TestLookupRegion(t *testing.T) {
	cases := []struct {
		region               string
		partition            string
		valid, known, pseudo bool
	}{
		{"us-east-1", "aws", true, true, false},
		{"eu-central-2", "aws", true, true, false},
		{"cn-north-1", "aws-cn", true, true, false},
		{"us-gov-west-1", "aws-us-gov", true, true, false},
		{"us-iso-east-1", "aws-iso", true, true, false},
		{"us-east-9", "aws", true, false, false},
		{"aws-global", "aws", false, false, true},
		{"aws-cn-global", "aws-cn", false, false, true},
		{"us-east1", "", false, false, false},
		{"US-EAST-1", "", false, false, false},
		{"", "", false, false, false},
		{"us-east-1 ", "", false, false, false},
	}
	for _, tc := range cases {
		got := LookupRegion(tc.region)
		if got.Partition != tc.partition || got.Valid != tc.valid || got.Known != tc.known || got.Pseudo != tc.pseudo {
			t.Errorf("LookupRegion(%q) = %+v", tc.region, got)
		}
	}
	if LookupRegion("us-east-1").Description == "" {
		t.Error("no description for us-east-1")
	}
}

func TestSuggestRegion(t *testing.T) {
	for in, want := range map[string]string{
		"us-east1": "us-east-1", "US-EAST-1": "us-east-1", "us-east-1a": "us-east-1", " eu-west-1": "eu-west-1",
		"eu-wset-1": "eu-west-1",
	} {
		if got, _ := suggestRegion(in); got != want {
			t.Errorf("suggestRegion(%q) = %q, want %q", in, got, want)
		}
	}
	if got, _ := suggestRegion("completely-unrelated-text"); got != "" {
		t.Errorf("suggestion for nonsense: %q", got)
	}
}

func TestPartitionsCopyIsIndependent(t *testing.T) {
	ps := Partitions()
	ps[0].Regions["zz-fake-1"] = "x"
	if LookupRegion("zz-fake-1").Known {
		t.Fatal("Partitions() exposes internal state")
	}
	if !IsPartition("aws-cn") || IsPartition("aws-moon") {
		t.Error("IsPartition")
	}
	if _, err := parsePartitions([]byte(`{"partitions":[{"id":"x","regionRegex":"("}]}`)); err == nil {
		t.Error("bad regex accepted")
	}
	if _, err := parsePartitions([]byte(`{}`)); err == nil {
		t.Error("empty metadata accepted")
	}
}
