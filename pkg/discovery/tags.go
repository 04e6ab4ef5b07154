package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// Instance tags, labels and annotations of discover-from-tags.
const (
	// TagUpstream on an instance names the Upstream to generate for it.
	TagUpstream = "ec2guard.io/upstream"
	// TagNamespace on an instance names the Upstream's namespace (default: the source's).
	TagNamespace = "ec2guard.io/namespace"
	// LabelGenerated ("true") marks generated Upstreams.
	LabelGenerated = "ec2guard.io/generated"
	// AnnotationGeneratedFrom names the credential group (secret, region) a generated Upstream
	// was discovered in; only that group's refresh deletes it.
	AnnotationGeneratedFrom = "ec2guard.io/generated-from"
)

// TagSource configures discover-from-tags: the instances that the secret's credentials see in
// each region and that carry TagUpstream become generated EC2 Upstreams.
type TagSource struct {
	Secret  types.NamespacedName
	Regions []string
	// DefaultNamespace holds the Upstreams of instances without TagNamespace (default: the
	// secret's namespace).
	DefaultNamespace string
	// Namespaces are the namespaces besides DefaultNamespace that an instance's TagNamespace may
	// choose ("*": any). Empty: only DefaultNamespace. Whoever may tag instances in the account
	// chooses among these, so keep it to namespaces meant for generated Upstreams.
	Namespaces ec2.NamespaceList
	// MaxUpstreams caps the Upstreams generated per credential group (region); 0 means
	// DefaultMaxGeneratedUpstreams. Upstreams that exist are kept first, then new ones by
	// namespace/name.
	MaxUpstreams int
}

// DefaultMaxGeneratedUpstreams is TagSource.MaxUpstreams' default.
const DefaultMaxGeneratedUpstreams = 100

// maxLoggedProblems bounds the per-instance problems logged by one sync (tags are written by
// whoever may tag instances; the rest are counted).
const maxLoggedProblems = 10

// allowsNamespace reports whether generated Upstreams may be placed in ns.
func (s TagSource) allowsNamespace(ns string) bool {
	return ns == s.defaultNamespace() || s.Namespaces.Allows(ns)
}

func (s TagSource) maxUpstreams() int {
	if s.MaxUpstreams > 0 {
		return s.MaxUpstreams
	}
	return DefaultMaxGeneratedUpstreams
}

// Groups are the credential groups the source is refreshed with (secret, region, no role). The
// generated Upstreams belong to the same groups, so discovering them costs no extra AWS call.
func (s TagSource) Groups() []GroupKey {
	out := make([]GroupKey, 0, len(s.Regions))
	for _, r := range s.Regions {
		out = append(out, GroupKey{Secret: s.Secret, Region: r})
	}
	return out
}

func (s TagSource) defaultNamespace() string {
	if s.DefaultNamespace != "" {
		return s.DefaultNamespace
	}
	return s.Secret.Namespace
}

// GeneratedUpstream is an Upstream discover-from-tags wants to exist.
type GeneratedUpstream struct {
	Key types.NamespacedName
	// ByNamespaceTag is true when the instances name the namespace with TagNamespace; the
	// Upstream then filters on that tag too.
	ByNamespaceTag bool
}

// DesiredGenerated returns the Upstreams the instances ask for, sorted, and a problem per
// instance whose tags cannot name an Upstream or name a namespace the source does not allow
// (EC2G704). An Upstream in the default namespace filters on
// TagUpstream only (it also selects same-named instances tagged for other namespaces; the audit
// reports that overlap); one in a namespace named by TagNamespace filters on both tags.
func DesiredGenerated(src TagSource, ix *Index) ([]GeneratedUpstream, []string) {
	want := map[types.NamespacedName]GeneratedUpstream{}
	var problems []string
	for i := range ix.Len() {
		inst := ix.Instance(int32(i))
		name, ok := inst.Tags[TagUpstream]
		if !ok {
			continue
		}
		ns, byTag := inst.Tags[TagNamespace]
		if !byTag {
			ns = src.defaultNamespace()
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("instance %s: tag %s=%q is not a valid Upstream name: %s", inst.ID, TagUpstream, name, strings.Join(errs, "; ")))
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("instance %s: tag %s=%q is not a valid namespace: %s", inst.ID, TagNamespace, ns, strings.Join(errs, "; ")))
			continue
		}
		if !src.allowsNamespace(ns) {
			problems = append(problems, fmt.Sprintf("instance %s: %s: %s", inst.ID, codes.GeneratedNamespaceRefused,
				codes.GeneratedNamespaceRefused.Message(ns, fmt.Sprintf("tag %s names it, and it is not in --discover-target-namespaces", TagNamespace))))
			continue
		}
		key := types.NamespacedName{Namespace: ns, Name: name}
		g := want[key]
		g.Key = key
		g.ByNamespaceTag = g.ByNamespaceTag || (byTag && ns != src.defaultNamespace())
		want[key] = g
	}
	out := slices.Collect(maps.Values(want))
	slices.SortFunc(out, func(a, b GeneratedUpstream) int {
		return cmp.Or(cmp.Compare(a.Key.Namespace, b.Key.Namespace), cmp.Compare(a.Key.Name, b.Key.Name))
	})
	return out, problems
}

// GeneratedObject is the Upstream object (spec.awsEc2 shape) for g found through group.
func GeneratedObject(g GeneratedUpstream, group GroupKey) *unstructured.Unstructured {
	filters := []any{map[string]any{"kvPair": map[string]any{"key": TagUpstream, "value": g.Key.Name}}}
	if g.ByNamespaceTag {
		filters = append(filters, map[string]any{"kvPair": map[string]any{"key": TagNamespace, "value": g.Key.Namespace}})
	}
	u := NewUpstreamObject()
	u.SetNamespace(g.Key.Namespace)
	u.SetName(g.Key.Name)
	u.SetLabels(map[string]string{LabelGenerated: "true", LabelServiceManagedBy: ManagedBy})
	u.SetAnnotations(map[string]string{AnnotationGeneratedFrom: group.String()})
	u.Object["spec"] = map[string]any{"awsEc2": map[string]any{
		"region":    group.Region,
		"secretRef": map[string]any{"name": group.Secret.Name, "namespace": group.Secret.Namespace},
		"filters":   filters,
	}}
	return u
}

// Generator creates and deletes the Upstreams of discover-from-tags.
type Generator struct {
	reader  client.Reader
	writer  client.Writer
	metrics *Metrics
	log     logr.Logger
}

// NewGenerator returns a generator.
func NewGenerator(reader client.Reader, writer client.Writer, m *Metrics, log logr.Logger) *Generator {
	return &Generator{reader: reader, writer: writer, metrics: m, log: log}
}

// Sync makes the generated Upstreams of group match what the group's instances ask for: it
// creates the missing ones and deletes those no instance carries the tag for any more. It is
// called only after a successful listing. An Upstream of the wanted name that was not generated
// from this group is left alone. It returns the number of API writes.
func (g *Generator) Sync(ctx context.Context, src TagSource, group GroupKey, ix *Index) (int, error) {
	want, problems := DesiredGenerated(src, ix)
	// Never a secretRef the secret does not allow: a namespace other than the secret's needs the
	// secret's ec2guard.io/allowed-namespaces annotation to list it, as for any Upstream.
	secret := &corev1.Secret{}
	if err := g.reader.Get(ctx, src.Secret, secret, client.UnsafeDisableDeepCopy); err != nil { // read-only: its metadata
		return 0, fmt.Errorf("get discover-from-tags secret %s: %w", src.Secret, err)
	}
	want = slices.DeleteFunc(want, func(w GeneratedUpstream) bool {
		if ec2.SecretUsableFrom(secret.Namespace, secret.Annotations, w.Key.Namespace) {
			return false
		}
		problems = append(problems, fmt.Sprintf("upstream %s: %s: %s", w.Key, codes.GeneratedNamespaceRefused,
			codes.GeneratedNamespaceRefused.Message(w.Key.Namespace, fmt.Sprintf("secret %s does not allow it (annotation %s)", src.Secret, ec2.AnnotationSecretAllowedNamespaces))))
		return true
	})
	for i, p := range problems {
		if i == maxLoggedProblems {
			g.log.Info("discover-from-tags: more instances skipped", "group", group.String(), "more", len(problems)-maxLoggedProblems)
			break
		}
		g.log.Info("discover-from-tags: skipping instance", "group", group.String(), "problem", p)
	}
	existing := NewUpstreamList()
	if err := g.reader.List(ctx, existing, client.MatchingLabels{LabelGenerated: "true"}); err != nil {
		return 0, fmt.Errorf("list generated upstreams: %w", err)
	}
	mine := map[types.NamespacedName]*unstructured.Unstructured{}
	for i := range existing.Items {
		u := &existing.Items[i]
		if u.GetAnnotations()[AnnotationGeneratedFrom] == group.String() {
			mine[types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()}] = u
		}
	}
	want, capped := capGenerated(want, mine, src.maxUpstreams())
	if capped > 0 {
		g.log.Info("discover-from-tags: too many upstreams wanted; the rest are not generated",
			"code", codes.GeneratedCapReached, "problem", codes.GeneratedCapReached.Message(src.maxUpstreams(), group.String(), capped), "group", group.String(), "max", src.maxUpstreams(), "notGenerated", capped)
	}
	g.metrics.generatedLimits(group.String(), capped, len(problems))
	writes := 0
	var errs []error
	for _, w := range want {
		if _, ok := mine[w.Key]; ok {
			delete(mine, w.Key)
			continue
		}
		switch err := g.reader.Get(ctx, w.Key, NewUpstreamObject()); {
		case err == nil:
			g.log.V(1).Info("discover-from-tags: an upstream of that name exists and was not generated from this group; leaving it alone",
				"upstream", w.Key.String(), "group", group.String())
			continue
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("get upstream %s: %w", w.Key, err))
			continue
		}
		obj := GeneratedObject(w, group)
		err := g.writer.Create(ctx, obj)
		writes++
		g.metrics.KubeWrite("upstreams", "create", err)
		switch {
		case apierrors.IsAlreadyExists(err):
			g.log.Info("discover-from-tags: an upstream of that name exists and was not generated from this group; leaving it alone",
				"upstream", w.Key.String(), "group", group.String())
		case err != nil:
			errs = append(errs, fmt.Errorf("create generated upstream %s: %w", w.Key, err))
		default:
			g.log.Info("discover-from-tags: created upstream", "upstream", w.Key.String(), "group", group.String())
		}
	}
	for _, key := range slices.SortedFunc(maps.Keys(mine), func(a, b types.NamespacedName) int { return cmp.Compare(a.String(), b.String()) }) {
		u := mine[key]
		err := g.writer.Delete(ctx, u, client.Preconditions{UID: ptr.To(u.GetUID())})
		writes++
		g.metrics.KubeWrite("upstreams", "delete", err)
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete generated upstream %s: %w", key, err))
			continue
		}
		g.log.Info("discover-from-tags: deleted upstream, no instance carries its tag any more", "upstream", key.String(), "group", group.String())
	}
	g.metrics.generatedUpstreams(group.String(), len(want))
	return writes, errors.Join(errs...)
}

// capGenerated keeps at most max of want (sorted): those that exist (in mine) first, so that
// newly tagged instances cannot push out Upstreams in use, then new ones in order. It returns
// the kept ones, sorted, and how many were dropped.
func capGenerated(want []GeneratedUpstream, mine map[types.NamespacedName]*unstructured.Unstructured, max int) ([]GeneratedUpstream, int) {
	if len(want) <= max {
		return want, 0
	}
	kept := make([]GeneratedUpstream, 0, max)
	for _, w := range want {
		if _, ok := mine[w.Key]; ok && len(kept) < max {
			kept = append(kept, w)
		}
	}
	for _, w := range want {
		if _, ok := mine[w.Key]; !ok && len(kept) < max {
			kept = append(kept, w)
		}
	}
	slices.SortFunc(kept, func(a, b GeneratedUpstream) int {
		return cmp.Or(cmp.Compare(a.Key.Namespace, b.Key.Namespace), cmp.Compare(a.Key.Name, b.Key.Name))
	})
	return kept, len(want) - len(kept)
}
