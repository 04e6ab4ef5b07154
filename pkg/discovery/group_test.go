package discovery

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
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
