package ec2

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Who may use AWS credentials. Two rules decide it, and the webhook and the discoverer apply the
// same ones (the webhook additionally asks the API server whether the requesting user may read the
// secret, since it knows the user):
//
//   - A Secret may be used by Upstreams in its own namespace, and by Upstreams in the namespaces
//     its AnnotationSecretAllowedNamespaces annotation lists (the secret's owner opts in).
//   - An Upstream without a secretRef uses the pod's own AWS identity (IRSA, EKS Pod Identity,
//     instance profile). Only namespaces in the operator's allow-list may do that; the list is
//     empty by default.

// AnnotationSecretAllowedNamespaces on a Secret lists, comma-separated, the namespaces other than
// its own whose Upstreams may use it; "*" allows every namespace.
const AnnotationSecretAllowedNamespaces = "ec2guard.io/allowed-namespaces"

// maxAllowedNamespaces bounds the annotation's list (an annotation may hold 256 KiB).
const maxAllowedNamespaces = 256

// SecretUsableFrom reports whether a Secret in secretNamespace with the given annotations may be
// used by an Upstream in namespace. A malformed annotation allows nothing beyond the secret's own
// namespace.
func SecretUsableFrom(secretNamespace string, annotations map[string]string, namespace string) bool {
	if secretNamespace == namespace {
		return true
	}
	list, err := ParseNamespaceList(annotations[AnnotationSecretAllowedNamespaces])
	if err != nil {
		return false
	}
	return list.Allows(namespace)
}

// NamespaceList is an allow-list of namespaces; "*" allows all.
type NamespaceList []string

// ParseNamespaceList parses a comma-separated list of namespace names or "*". Blank entries are
// ignored; an entry that is not a valid namespace name is an error naming it.
func ParseNamespaceList(s string) (NamespaceList, error) {
	var out NamespaceList
	for part := range strings.SplitSeq(s, ",") {
		ns := strings.TrimSpace(part)
		if ns == "" {
			continue
		}
		if len(out) == maxAllowedNamespaces {
			return nil, fmt.Errorf("more than %d namespaces", maxAllowedNamespaces)
		}
		if ns != "*" {
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				return nil, fmt.Errorf("%q is not a namespace name: %s", ns, strings.Join(errs, "; "))
			}
		}
		out = append(out, ns)
	}
	return out, nil
}

// Allows reports whether namespace is in the list (or the list holds "*").
func (l NamespaceList) Allows(namespace string) bool {
	for _, ns := range l {
		if ns == "*" || ns == namespace {
			return true
		}
	}
	return false
}

// AnnotationSecretDedicatedAccount on a Secret is its owner's statement that the AWS account (and
// region) behind its credentials holds only the instances the Upstreams using it are meant to
// route to: "true" makes the credentials restrictive for the consistency class
// (restrictive-credentials-*), so an Upstream without filters is not warned about (EC2G601).
// Nothing in IAM can show it — ec2:DescribeInstances has no resource-level permissions — so it is
// the secret owner's word, settable only by whoever may edit the Secret (not by an Upstream that
// borrows it).
const AnnotationSecretDedicatedAccount = "ec2guard.io/dedicated-account"

// SecretAnnotationKeys are the annotations of a Secret that ec2guard's rules read (a cache of
// Secrets may drop every other one).
func SecretAnnotationKeys() []string {
	return []string{AnnotationSecretAllowedNamespaces, AnnotationSecretDedicatedAccount}
}

// SecretDedicatedAccount reports whether a Secret's annotations state a dedicated account: the
// value "true" (any other value, or none, is not a statement).
func SecretDedicatedAccount(annotations map[string]string) bool {
	return strings.TrimSpace(annotations[AnnotationSecretDedicatedAccount]) == "true"
}
