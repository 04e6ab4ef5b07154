package admission

import (
	"context"

	"reflect"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

// The access gate ("authorize") is the first step of every review, validating and mutating: it
// decides whether this request may use the credentials the Upstream names — read the Secret and
// call AWS with it, or use the pod's own AWS identity — before anything does. Nothing that depends
// on the credentials (the Secret's content, the principal, its policies) is computed for a request
// the gate closes, so nothing of it can reach the user in a message, a warning or an annotation.
//
//   - secretRef in the Upstream's own namespace: open (a namespace's Upstreams may use its Secrets).
//   - secretRef in another namespace: open when a SubjectAccessReview says the requesting user may
//     `get` that Secret (EC2G401 when not, EC2G402 when the review fails). The Secret must then
//     also opt in to use from the Upstream's namespace (EC2G406, checked once it is read).
//   - no secretRef (the pod's own identity): open for namespaces in --pod-identity-namespaces,
//     else EC2G405.
//   - an UPDATE that changes nothing in spec (labels, annotations, ...) borrows nothing new: it is
//     admitted without a review, and neither reads the Secret nor calls AWS; the mutating webhook
//     keeps the ec2guard.io annotations the old object had.
//
// The gate does not depend on the enforcement actions: under --enforce-secret-access=warn a user
// who may not read the Secret is admitted with a warning, but the Secret is still not read.

// requestInfo is what the review needs from the admission request.
type requestInfo struct {
	user authenticationv1.UserInfo
	// metadataOnly is set for an UPDATE whose spec equals the old object's (either Gloo shape,
	// compared as JSON). The zero value (false) means the spec is new or changed.
	metadataOnly bool
	// oldAnnotations are the old object's annotations on UPDATE.
	oldAnnotations map[string]string
}

// requestInfoOf extracts the requesting user and, on UPDATE, whether the spec changed; obj is the
// request's object as the decorators decoded it (Decoded.Object). The old object is decoded here,
// the only step that reads it.
func requestInfoOf(req admission.Request, obj map[string]any) requestInfo {
	info := requestInfo{user: req.UserInfo}
	if req.Operation != admissionv1.Update || len(req.OldObject.Raw) == 0 {
		return info
	}
	// An old or new object that does not decode counts as changed: the gate then runs in full.
	// Only the old object's spec and annotations are read (its managedFields, as large as the
	// rest, are skipped), with the same decoding as the new object's.
	var oldObj struct {
		Metadata *struct {
			Annotations map[string]any `json:"annotations"`
		} `json:"metadata"`
		Spec any `json:"spec"`
	}
	if sigsjson.UnmarshalCaseSensitivePreserveInts(req.OldObject.Raw, &oldObj) != nil {
		return info
	}
	var oldRaw any // stays nil (no annotations) unless the old object has some
	if oldObj.Metadata != nil && oldObj.Metadata.Annotations != nil {
		oldRaw = oldObj.Metadata.Annotations
	}
	oldAnnotations, ok := annotationStrings(oldRaw)
	if !ok || !hasStringAnnotations(obj) {
		return info
	}
	info.oldAnnotations = oldAnnotations
	info.metadataOnly = reflect.DeepEqual(oldObj.Spec, obj["spec"])
	return info
}

// hasStringAnnotations reports whether a decoded object's metadata is absent or an object whose
// annotations are absent or a map of strings. It only checks: the new object's annotations are
// not needed as a map.
func hasStringAnnotations(obj map[string]any) bool {
	if obj["metadata"] == nil {
		return true
	}
	meta, isMap := obj["metadata"].(map[string]any)
	if !isMap {
		return false
	}
	if meta["annotations"] == nil {
		return true
	}
	ann, isMap := meta["annotations"].(map[string]any)
	if !isMap {
		return false
	}
	for _, v := range ann {
		if _, isString := v.(string); !isString {
			return false
		}
	}
	return true
}

// annotationStrings converts decoded annotations (nil, or a map whose values must be strings).
func annotationStrings(v any) (ann map[string]string, ok bool) {
	if v == nil {
		return nil, true
	}
	raw, isMap := v.(map[string]any)
	if !isMap {
		return nil, false
	}
	ann = make(map[string]string, len(raw))
	for k, v := range raw {
		s, isString := v.(string)
		if !isString {
			return nil, false
		}
		ann[k] = s
	}
	return ann, true
}

// grant is the access gate's answer for one request.
type grant struct {
	// use: the request may read the Secret (when there is one) and call AWS with the credentials.
	use bool
	// unchanged: a metadata-only UPDATE whose credential use was not re-evaluated.
	unchanged bool
	// reviewed: a SubjectAccessReview was asked (the secret-access check ran).
	reviewed bool
	// problems: EC2G401, EC2G402 or EC2G405.
	problems []Problem
}

// authorize is the access gate. It reads no Secret and calls no AWS.
func authorize(ctx context.Context, access AccessReviewer, podIdentity ec2.NamespaceList, req requestInfo, u *ec2.Upstream) grant {
	ref, hasRef := u.SecretName()
	switch {
	case req.metadataOnly:
		return grant{unchanged: true}
	case hasRef && ref.Name == "":
		return grant{} // a spec error (EC2G3xx): no credentials to use
	case hasRef && ref.Namespace == u.Namespace:
		return grant{use: true}
	case !hasRef:
		if podIdentity.Allows(u.Namespace) {
			return grant{use: true}
		}
		return grant{problems: []Problem{newProblem(codes.PodIdentityNotAllowed, u.Path().String(), u.Namespace)}}
	}
	field := u.Path().Child("secretRef").String()
	allowed, reason, err := access.CanGetSecret(ctx, req.user, ref)
	if err != nil {
		return grant{reviewed: true, problems: []Problem{newProblem(codes.SecretAccessUnverified, field, req.user.Username, ref, err)}}
	}
	if allowed {
		return grant{use: true, reviewed: true}
	}
	if reason != "" {
		reason = " (" + reason + ")"
	}
	return grant{reviewed: true, problems: []Problem{newProblem(codes.SecretAccessDenied, field, req.user.Username, ref, u.Namespace, reason)}}
}

// checkSecretShared: a Secret used from another namespace must list that namespace in its
// ec2guard.io/allowed-namespaces annotation — the rule the discoverer enforces too (ec2.SecretUsableFrom).
func checkSecretShared(u *ec2.Upstream, secretNamespace string, annotations map[string]string) []Problem {
	f := SecretNotShared(u, secretNamespace, annotations)
	if f == nil {
		return nil
	}
	return []Problem{problemFromFinding(codes.CheckSecretAccess, *f)}
}

// SecretNotShared is the opt-in rule as a finding (EC2G406), nil when the Secret may be used from
// the Upstream's namespace: the webhook reports it, and `ec2guard check` from the same function.
func SecretNotShared(u *ec2.Upstream, secretNamespace string, annotations map[string]string) *ec2.Finding {
	if ec2.SecretUsableFrom(secretNamespace, annotations, u.Namespace) {
		return nil
	}
	ref, _ := u.SecretName()
	c := codes.SecretNotShared
	return &ec2.Finding{
		Code: c, Severity: c.Severity(), Field: u.Path().Child("secretRef").String(),
		Message: c.Message(ref, u.Namespace), Fix: c.Fix(ref, u.Namespace),
	}
}
