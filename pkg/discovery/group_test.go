package discovery

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/discovered"
)

func TestGroupTargets(t *testing.T) {
	mk := func(ns, name, region, secret, role string) *Target {
		s := ec2Spec(region, secret)
		if role != "" {
			s["roleArn"] = role
		}
		tg, err := NewTarget(upstreamObj(ns, name, name, false, s, nil), "")
		if err != nil || tg.Invalid != "" {
			t.Fatalf("%s: %v %s", name, err, tg.Invalid)
		}
		return tg
	}
	role := "arn:aws:iam::123456789012:role/r"
	ts := []*Target{
		mk("b", "z", "us-east-1", "s1", ""), mk("a", "y", "us-east-1", "s1", ""),
		mk("a", "x", "eu-west-1", "s1", ""), mk("a", "w", "us-east-1", "s1", role), mk("a", "v", "us-east-1", "", ""),
	}
	g := GroupTargets(ts)
	if len(g) != 4 {
		t.Fatalf("%d groups, want 4: %v", len(g), SortedGroupKeys(g))
	}
	k := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "s1"}, Region: "us-east-1"}
	if ms := g[k]; len(ms) != 2 || ms[0].Upstream.Name != "y" || ms[1].Upstream.Name != "z" {
		t.Fatalf("group %s members = %v, want y then z", k, ms)
	}
	if !(GroupKey{Region: "us-east-1"}).UsesDefaultCredentials() || (GroupKey{Region: "us-east-1"}).String() != "default|us-east-1|" {
		t.Fatal("a group without secret uses the default chain")
	}
	keys := SortedGroupKeys(g)
	if keys[0] != (GroupKey{Region: "us-east-1"}) {
		t.Fatalf("sorted keys start with %v", keys[0])
	}
}

// TestPlanGroups: the regroup's plan is a pure function of the targets, the refusals and the
// tag sources: refused and invalid targets are in no group, a group shared with a refused
// Upstream keeps the allowed one, tag-source groups exist without members.
func TestPlanGroups(t *testing.T) {
	mk := func(ns, name, secret, region string) *Target {
		tg, err := NewTarget(upstreamObj(ns, name, "uid-"+name, false, secretRefSpec(region, "default", secret, kv("app", "web")), nil), "")
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	invalid, err := NewTarget(upstreamObj("default", "bad", "uid-bad", false, ec2Spec("nowhere", "aws", kv("a", "1")), nil), "")
	if err != nil {
		t.Fatal(err)
	}
	targets := map[types.NamespacedName]*Target{}
	for _, tg := range []*Target{mk("default", "ok", "aws", "us-east-1"), mk("team-a", "borrow", "aws", "us-east-1"), mk("team-a", "alone", "aws", "eu-west-1"), invalid} {
		targets[tg.Key()] = tg
	}
	refusals := map[types.NamespacedName]*discovered.Refusal{
		{Namespace: "team-a", Name: "borrow"}: {Code: string(codes.DiscoverySecretNotShared)},
		{Namespace: "team-a", Name: "alone"}:  {Code: string(codes.DiscoverySecretNotShared)},
	}
	src := TagSource{Secret: types.NamespacedName{Namespace: "gloo", Name: "tags"}, Regions: []string{"us-west-2"}}
	p := planGroups(targets, refusals, []TagSource{src})
	shared := GroupKey{Secret: types.NamespacedName{Namespace: "default", Name: "aws"}, Region: "us-east-1"}
	if len(p.groups) != 2 || len(p.groups[shared]) != 1 || p.groups[shared][0].Upstream.Name != "ok" {
		t.Fatalf("groups = %v", p.groups)
	}
	if tg := src.Groups()[0]; p.sources[tg] == nil || p.groups[tg] != nil {
		t.Fatalf("tag-source group: source %v, members %v", p.sources[tg], p.groups[tg])
	}

	prev := map[types.NamespacedName]*Target{{Namespace: "default", Name: "ok"}: targets[types.NamespacedName{Namespace: "default", Name: "ok"}]}
	gone := mk("default", "gone", "aws", "us-east-1")
	prev[gone.Key()] = gone
	if r := removedTargets(prev, targets); len(r) != 1 || r[gone.Key()] != gone {
		t.Fatalf("removed = %v", r)
	}
}
