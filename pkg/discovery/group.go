package discovery

import (
	"cmp"
	"slices"

	"k8s.io/apimachinery/pkg/types"
)

// GroupKey is a credential group: the Upstreams that share a secret (or the pod's own identity),
// a region and a roleArn see the same instances, so one paginated DescribeInstances per group
// and refresh serves all of them. The secret's version is not part of the key: a changed secret
// is picked up by the group's next refresh (the AWS clients are cached per version).
type GroupKey struct {
	// Secret is zero when the pod's own AWS identity (SDK default chain) is used.
	Secret  types.NamespacedName
	Region  string
	RoleARN string
}

// UsesDefaultCredentials reports whether the group uses the pod's own AWS identity.
func (k GroupKey) UsesDefaultCredentials() bool { return k.Secret == (types.NamespacedName{}) }

// String identifies the group in logs, metrics and annotations: "secret/NS/NAME|REGION|ROLE"
// or "default|REGION|ROLE". It holds no secret value.
func (k GroupKey) String() string {
	src := "default"
	if !k.UsesDefaultCredentials() {
		src = "secret/" + k.Secret.Namespace + "/" + k.Secret.Name
	}
	return src + "|" + k.Region + "|" + k.RoleARN
}

func compareGroupKeys(a, b GroupKey) int {
	return cmp.Or(
		cmp.Compare(a.Secret.Namespace, b.Secret.Namespace),
		cmp.Compare(a.Secret.Name, b.Secret.Name),
		cmp.Compare(a.Region, b.Region),
		cmp.Compare(a.RoleARN, b.RoleARN),
	)
}

// GroupTargets batches valid targets by credential group; each group's members are sorted by
// namespace/name. Invalid targets belong to no group.
func GroupTargets(targets []*Target) map[GroupKey][]*Target {
	out := map[GroupKey][]*Target{}
	for _, t := range targets {
		if t.Invalid != "" {
			continue
		}
		k := t.Group()
		out[k] = append(out[k], t)
	}
	for _, ms := range out {
		slices.SortFunc(ms, compareTargets)
	}
	return out
}

// SortedGroupKeys returns the keys in a stable order.
func SortedGroupKeys[V any](m map[GroupKey]V) []GroupKey {
	keys := make([]GroupKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareGroupKeys)
	return keys
}

func compareTargets(a, b *Target) int {
	return cmp.Or(
		cmp.Compare(a.Upstream.Namespace, b.Upstream.Namespace),
		cmp.Compare(a.Upstream.Name, b.Upstream.Name),
	)
}
