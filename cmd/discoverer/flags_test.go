package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/discovery"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("EC2GUARD_AWS_ENDPOINT", "")
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options()
	if err != nil {
		t.Fatal(err)
	}
	if o.Loop.Interval != 30*time.Second || o.Loop.Jitter != discovery.DefaultJitter || o.Publish != discovery.PublishEndpointSlices ||
		!o.ZoneHints || o.AnnotationHeartbeat != 0 || len(o.TagSources) != 0 || !c.leaderElect || !c.iamAudit || !c.reports ||
		o.ServiceType != discovery.ServiceHeadless || len(o.PodIdentityNamespaces) != 0 {
		t.Fatalf("defaults = %+v / %+v", c, o)
	}
}

func TestParseFlagsReportsOff(t *testing.T) {
	c, err := parseFlags([]string{"--reports=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.reports {
		t.Fatal("--reports=false left reports on")
	}
}

func TestParseFlagsDiscoverFromTags(t *testing.T) {
	c, err := parseFlags([]string{"--discover-from-tags", "--discover-secret=gloo/aws", "--discover-regions=us-east-1, eu-west-1",
		"--port-tag=port", "--interval=2s", "--publish=none", "--aws-endpoint=http://127.0.0.1:5000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options()
	if err != nil {
		t.Fatal(err)
	}
	want := discovery.TagSource{Secret: types.NamespacedName{Namespace: "gloo", Name: "aws"}, Regions: []string{"us-east-1", "eu-west-1"}}
	if len(o.TagSources) != 1 || o.TagSources[0].Secret != want.Secret || strings.Join(o.TagSources[0].Regions, ",") != "us-east-1,eu-west-1" {
		t.Fatalf("tag sources = %+v", o.TagSources)
	}
	if o.DefaultPortTag != "port" || o.Loop.Interval != 2*time.Second || o.Publish != discovery.PublishNone || c.awsEndpoint != "http://127.0.0.1:5000" {
		t.Fatalf("options = %+v", o)
	}
}

func TestParseFlagsHardening(t *testing.T) {
	c, err := parseFlags([]string{"--pod-identity-namespaces=team-a, team-b", "--service-type=clusterip", "--discover-from-tags",
		"--discover-secret=gloo/aws", "--discover-regions=us-east-1", "--discover-target-namespaces=team-a", "--discover-max-upstreams=7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options()
	if err != nil {
		t.Fatal(err)
	}
	if !o.PodIdentityNamespaces.Allows("team-b") || o.PodIdentityNamespaces.Allows("team-c") || o.ServiceType != discovery.ServiceClusterIP {
		t.Fatalf("options = %+v", o)
	}
	if src := o.TagSources[0]; src.MaxUpstreams != 7 || !src.Namespaces.Allows("team-a") || src.Namespaces.Allows("kube-system") {
		t.Fatalf("tag source = %+v", src)
	}
}

func TestParseFlagsRejectsBadValues(t *testing.T) {
	cases := map[string][]string{
		"--interval":                   {"--interval=0s"},
		"--jitter":                     {"--jitter=1.5"},
		"--max-backoff":                {"--interval=10m", "--max-backoff=1m"},
		"--publish":                    {"--publish=services"},
		"--discover-secret":            {"--discover-from-tags", "--discover-regions=us-east-1"},
		"--discover-regions":           {"--discover-from-tags", "--discover-secret=ns/name"},
		"need --discover-from":         {"--discover-secret=ns/name"},
		"--iam-read-with":              {"--iam-read-with=root"},
		"--log-level":                  {"--log-level=loud"},
		"--port-tag":                   {"--port-tag= port"},
		"unexpected arguments":         {"extra"},
		"--max-concurrent":             {"--max-concurrent-refreshes=0"},
		"--annotation-heartbeat":       {"--annotation-heartbeat=-1s"},
		"--service-type":               {"--service-type=nodeport"},
		"--pod-identity-namespaces":    {"--pod-identity-namespaces=Team_A"},
		"--discover-target-namespaces": {"--discover-from-tags", "--discover-secret=ns/name", "--discover-regions=us-east-1", "--discover-target-namespaces=a,B!"},
		"--discover-max-upstreams":     {"--discover-from-tags", "--discover-secret=ns/name", "--discover-regions=us-east-1", "--discover-max-upstreams=0"},
	}
	for want, args := range cases {
		_, err := parseFlags(args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(want, "need ")) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", args, err, want)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
