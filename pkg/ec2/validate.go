package ec2

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks the Upstream against every rule and returns the errors as a field.ErrorList (each
// Detail starts with the rule's code) and the warnings. Use Check for the richer Finding form.
func (u *Upstream) Validate() (field.ErrorList, Findings) {
	fs := u.Check()
	return fs.Errors(), fs.Warnings()
}

// ValidateContext is Validate with a context; see CheckContext.
func (u *Upstream) ValidateContext(ctx context.Context) (field.ErrorList, Findings) {
	fs := u.CheckContext(ctx)
	return fs.Errors(), fs.Warnings()
}

// Check runs every rule and returns the findings (see CheckContext). It does not look at the
// referenced Secret: see CheckSecret. It is CheckContext without a deadline.
func (u *Upstream) Check() Findings { return u.CheckContext(context.Background()) }

// CheckContext runs every rule and returns the findings — the size gate (EC2G105) first, then the
// decoding problems, then the rules' — bounded: at most MaxReportedErrors errors and
// MaxReportedWarnings warnings, the rest counted in one EC2G007 finding. Every rule is linear in
// the number of filters, and more than MaxFilters filters stop the filter rules at EC2G105. ctx is
// checked between rules: when it ends the check stops with an EC2G008 error (the Upstream is then
// not known to be valid).
func (u *Upstream) CheckContext(ctx context.Context) Findings {
	p := u.Path()
	s := u.Spec
	fp := p.Child("filters")
	tooMany := len(s.Filters) > MaxFilters
	rules := []func() Findings{
		func() Findings { return checkRegion(s.Region, p.Child("region")) },
		func() Findings { return checkRoleARN(s.RoleARN, s.Region, p.Child("roleArn")) },
		func() Findings { return checkPort(s.Port, p.Child("port")) },
		func() Findings { return checkSecretRef(s.SecretRef, u.Namespace, p.Child("secretRef")) },
		func() Findings { return checkNoFilters(s.Filters, fp) },
	}
	if !tooMany {
		rules = append(rules,
			func() Findings { return checkEachFilter(s.Filters, fp) },
			func() Findings { return checkFilterDuplicates(s.Filters, fp) },
			func() Findings { return checkFilterConflicts(s.Filters, fp) },
			func() Findings { return checkFilterRedundantKeys(s.Filters, fp) },
			func() Findings { return checkFilterKeyCase(s.Filters, fp) },
		)
	}
	rules = append(rules, func() Findings { return checkPortTag(u.Annotations) })

	var set findingSet
	// The size gate comes first so that it is always shown, whatever else the object holds.
	set.addAll(checkFilterCount(s.Filters, fp))
	set.merge(&u.decoded)
	var stopped error
	for _, rule := range rules {
		if stopped = ctx.Err(); stopped != nil {
			break
		}
		for _, f := range rule() {
			// A field that could not be decoded reads as empty; do not report it again as empty/missing.
			if !u.decoded.suppressed(f.Field) {
				set.add(f)
			}
		}
	}
	out := set.findings(p)
	if stopped != nil {
		out = append(out, newFinding(CodeCheckInterrupted, p, field.ErrorTypeInternal, field.OmitValueType{},
			fmt.Sprintf("the check stopped before all rules ran: %v", stopped),
			"retry; the Upstream is not known to be valid until every rule has run"))
	}
	return out
}

// ---- region ----

// checkRegion: region is required and must match an AWS partition's region pattern (SDK metadata).
func checkRegion(region string, p *field.Path) Findings {
	if region == "" {
		return Findings{newFinding(CodeRegionRequired, p, field.ErrorTypeRequired, nil,
			"region is required", "set the instances' region, e.g. region: us-east-1")}
	}
	info := LookupRegion(region)
	switch {
	case info.Pseudo:
		fix := "use the region code of the instances"
		if part, ok := lookupPartition(info.Partition); ok && part.ImplicitGlobalRegion != "" {
			fix = fmt.Sprintf("use the region code of the instances, e.g. %s", part.ImplicitGlobalRegion)
		}
		return Findings{newFinding(CodeRegionInvalid, p, field.ErrorTypeInvalid, region,
			fmt.Sprintf("%q is a global pseudo-region of partition %s, not an EC2 region", region, info.Partition), fix)}
	case !info.Valid:
		fix := "use a region code such as us-east-1"
		if s, why := suggestRegion(region); s != "" {
			fix = fmt.Sprintf("did you mean %s? (%s)", s, why)
		}
		return Findings{newFinding(CodeRegionInvalid, p, field.ErrorTypeInvalid, truncate(region, 64),
			fmt.Sprintf("region %s matches no AWS partition's region pattern", quoteShort(region)), fix)}
	case !info.Known:
		fix := "check the spelling; ignore this if the region is newer than ec2guard's AWS SDK"
		if s, _ := suggestRegion(region); s != "" && s != region {
			fix = fmt.Sprintf("did you mean %s? ignore this if %s is a region newer than ec2guard's AWS SDK", s, region)
		}
		return Findings{newFinding(CodeRegionUnknown, p, field.ErrorTypeNotSupported, region,
			fmt.Sprintf("region %q has the shape of a %s region but is not one the AWS SDK knows", region, info.Partition), fix)}
	}
	return nil
}

// ---- roleArn ----

var (
	accountIDRe = regexp.MustCompile(`^\d{12}$`)
	roleNameRe  = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	rolePathRe  = regexp.MustCompile(`^/([\x21-\x7E]*/)?$`)
)

// checkRoleARN: roleArn, when set, must be an IAM role ARN in the region's partition.
func checkRoleARN(roleARN, region string, p *field.Path) Findings {
	if roleARN == "" {
		return nil
	}
	const fixRole = "use the role's ARN: arn:aws:iam::123456789012:role/NAME"
	a, err := arn.Parse(roleARN)
	if err != nil {
		return Findings{newFinding(CodeRoleARNInvalid, p, field.ErrorTypeInvalid, truncate(roleARN, 128),
			fmt.Sprintf("roleArn %s is not an ARN (arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE)", quoteShort(roleARN)), fixRole)}
	}
	notRole := func(why, fix string) Findings {
		return Findings{newFinding(CodeRoleARNNotRole, p, field.ErrorTypeInvalid, truncate(roleARN, 128),
			fmt.Sprintf("roleArn %s is not an IAM role ARN: %s", quoteShort(roleARN), why), fix)}
	}
	if !IsPartition(a.Partition) {
		return notRole(fmt.Sprintf("unknown partition %q", a.Partition), fixRole)
	}
	if a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/") {
		role, _, _ := strings.Cut(strings.TrimPrefix(a.Resource, "assumed-role/"), "/")
		return notRole("it is an assumed-role session ARN",
			fmt.Sprintf("use the role it came from: arn:%s:iam::%s:role/%s (add the role's path if it has one)", a.Partition, a.AccountID, role))
	}
	if a.Service != "iam" {
		return notRole(fmt.Sprintf("service is %q, not iam", a.Service), fixRole)
	}
	if a.Region != "" {
		return notRole(fmt.Sprintf("IAM ARNs have no region, this one has %q", a.Region), "remove the region: arn:PARTITION:iam::ACCOUNT:role/NAME")
	}
	if !accountIDRe.MatchString(a.AccountID) {
		return notRole(fmt.Sprintf("account %q is not a 12-digit account id", a.AccountID), fixRole)
	}
	kind, rest, _ := strings.Cut(a.Resource, "/")
	if kind != "role" {
		fix := fixRole
		if kind == "user" {
			fix = "roleArn is for a role to assume; to use a user's access keys, put them in the secret and remove roleArn"
		}
		return notRole(fmt.Sprintf("resource is %q, not role/NAME", truncate(a.Resource, 64)), fix)
	}
	name := rest
	path := "/"
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		name = rest[i+1:]
		path = "/" + rest[:i+1]
	}
	if !roleNameRe.MatchString(name) || !rolePathRe.MatchString(path) {
		return notRole(fmt.Sprintf("role name %s is not a valid IAM role name (1-64 of letters, digits and +=,.@_-)", quoteShort(name)), fixRole)
	}
	if info := LookupRegion(region); info.Valid && info.Partition != a.Partition {
		return Findings{newFinding(CodeRoleARNPartition, p, field.ErrorTypeInvalid, roleARN,
			fmt.Sprintf("roleArn is in partition %s but region %s is in partition %s; STS cannot assume it there", a.Partition, region, info.Partition),
			"use a role in the region's partition, or a region in the role's partition")}
	}
	return nil
}

// ---- port ----

// checkPort: the port must be 1–65535 (0 means unset; negative values are caught while decoding).
func checkPort(port uint32, p *field.Path) Findings {
	if port > 65535 {
		return Findings{newFinding(CodePortRange, p, field.ErrorTypeInvalid, int64(port),
			fmt.Sprintf("port %d is not an integer 1-65535", port),
			"set port to the instances' service port, or remove it for the default 80")}
	}
	return nil
}

// ---- secretRef ----

// checkSecretRef: a present secretRef names a valid secret; a missing namespace is defaulted.
func checkSecretRef(ref *SecretRef, upstreamNamespace string, p *field.Path) Findings {
	if ref == nil {
		return nil
	}
	var out Findings
	switch {
	case ref.Name == "":
		out = append(out, newFinding(CodeSecretRefNameRequired, p.Child("name"), field.ErrorTypeRequired, nil,
			"secretRef.name is required when secretRef is set",
			"set it to the Gloo AWS secret's name, or remove secretRef to use the pod's own AWS identity"))
	default:
		if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
			out = append(out, newFinding(CodeSecretRefInvalidName, p.Child("name"), field.ErrorTypeInvalid, truncate(ref.Name, 64),
				fmt.Sprintf("secret name %s is not a valid Kubernetes name: %s", quoteShort(ref.Name), shortK8sMessage(errs[0])),
				"use the Secret's real name"))
		}
	}
	switch {
	case ref.Namespace == "":
		ns := upstreamNamespace
		if ns == "" {
			ns = "(the Upstream's namespace)"
		}
		out = append(out, newFinding(CodeSecretRefNamespaceDefaulted, p.Child("namespace"), field.ErrorTypeRequired, nil,
			fmt.Sprintf("secretRef.namespace is not set; ec2guard assumes %s, but Gloo looks the secret up by the namespace written in the reference", ns),
			"set secretRef.namespace explicitly"))
	default:
		if errs := validation.IsDNS1123Label(ref.Namespace); len(errs) > 0 {
			out = append(out, newFinding(CodeSecretRefInvalidName, p.Child("namespace"), field.ErrorTypeInvalid, truncate(ref.Namespace, 64),
				fmt.Sprintf("namespace %s is not a valid namespace name: %s", quoteShort(ref.Namespace), shortK8sMessage(errs[0])),
				"use the Secret's real namespace"))
		}
	}
	return out
}

// ---- annotations ----

// checkPortTag: the ec2guard.io/port-tag annotation, when set, must be a usable tag key.
func checkPortTag(ann map[string]string) Findings {
	v, ok := ann[AnnotationPortTag]
	if !ok {
		return nil
	}
	p := field.NewPath("metadata", "annotations").Key(AnnotationPortTag)
	switch n := utf8.RuneCountInString(v); {
	case strings.TrimSpace(v) == "":
		return Findings{newFinding(CodePortTagInvalid, p, field.ErrorTypeInvalid, v,
			"the port-tag annotation is empty", "set it to the tag key that carries each instance's port, or remove it")}
	case n > MaxTagKeyLength:
		return Findings{newFinding(CodePortTagInvalid, p, field.ErrorTypeInvalid, field.OmitValueType{},
			fmt.Sprintf("the port-tag annotation is %d characters long; tag keys have at most %d", n, MaxTagKeyLength),
			"set it to the tag key that carries each instance's port")}
	}
	return nil
}

// ---- filters ----

// checkEachFilter runs the per-filter rules.
func checkEachFilter(filters []Filter, p *field.Path) Findings {
	var out Findings
	for i, f := range filters {
		fp := p.Index(i)
		out = append(out, checkFilterKeyOrKVPair(f, fp)...)
		if f.Key != nil {
			out = append(out, checkFilterKey(*f.Key, fp.Child("key"))...)
		}
		if f.KVPair != nil {
			out = append(out, checkFilterKey(f.KVPair.Key, fp.Child("kvPair", "key"))...)
			out = append(out, checkFilterValue(f.KVPair.Value, f.KVPair.Key, fp.Child("kvPair", "value"))...)
		}
	}
	return out
}

// checkFilterCount: at most MaxFilters filters.
func checkFilterCount(filters []Filter, p *field.Path) Findings {
	if len(filters) <= MaxFilters {
		return nil
	}
	return Findings{newFinding(CodeTooManyFilters, p, field.ErrorTypeTooMany, int64(len(filters)),
		fmt.Sprintf("%d filters, at most %d are allowed (an instance carries at most 50 user tags)", len(filters), MaxFilters),
		"remove filters")}
}

// checkNoFilters: no filters selects every running instance the credentials can list.
func checkNoFilters(filters []Filter, p *field.Path) Findings {
	if len(filters) > 0 {
		return nil
	}
	return Findings{newFinding(CodeNoFilters, p, field.ErrorTypeRequired, nil,
		"no filters: every running instance the credentials can list in the region is selected",
		"add tag filters, or make sure the credentials only see the intended instances (separate account or region)")}
}

// checkFilterKeyOrKVPair: exactly one of key or kvPair.
func checkFilterKeyOrKVPair(f Filter, p *field.Path) Findings {
	switch {
	case f.Key != nil && f.KVPair != nil:
		return Findings{newFinding(CodeFilterKeyOrKVPair, p, field.ErrorTypeInvalid, field.OmitValueType{},
			fmt.Sprintf("exactly one of key or kvPair must be set, this filter has both (%s)", f),
			"split it into two filters `- key: K` and `- kvPair: {key: K, value: V}`, or keep only the kvPair (it implies the key)")}
	case f.Key == nil && f.KVPair == nil:
		return Findings{newFinding(CodeFilterKeyOrKVPair, p, field.ErrorTypeRequired, nil,
			"exactly one of key or kvPair must be set, this filter has neither",
			"write `- key: K` (tag K exists) or `- kvPair: {key: K, value: V}` (tag K equals V)")}
	}
	return nil
}

// checkFilterKey: a tag key is non-empty, at most 128 characters, without surrounding white space;
// `*`/`?` in it get a note.
func checkFilterKey(key string, p *field.Path) Findings {
	if key == "" {
		return Findings{newFinding(CodeFilterKeyEmpty, p, field.ErrorTypeRequired, nil,
			"the tag key is empty", "write the tag key")}
	}
	var out Findings
	if n := utf8.RuneCountInString(key); n > MaxTagKeyLength {
		out = append(out, newFinding(CodeFilterKeyTooLong, p, field.ErrorTypeTooLong, field.OmitValueType{},
			fmt.Sprintf("the tag key is %d characters long; AWS tag keys have at most %d, so no instance can match", n, MaxTagKeyLength),
			"use the instances' real tag key"))
	}
	if hasOuterSpace(key) {
		out = append(out, newFinding(CodeFilterWhitespace, p, field.ErrorTypeInvalid, truncate(key, 64),
			fmt.Sprintf("the tag key %s starts or ends with white space; tags are compared exactly", quoteShort(key)),
			"remove the white space unless the tag really has it"))
	}
	if strings.ContainsAny(key, "*?") {
		out = append(out, newFinding(CodeFilterKeyWildcard, p, field.ErrorTypeInvalid, truncate(key, 64),
			fmt.Sprintf("the tag key %s contains * or ?; they are matched literally, not as wildcards", quoteShort(key)),
			"check the key is really spelt this way"))
	}
	return out
}

// checkFilterValue: a kvPair value is at most 256 characters; empty and white-space values get warnings.
func checkFilterValue(value, key string, p *field.Path) Findings {
	if value == "" {
		return Findings{newFinding(CodeFilterEmptyValue, p, field.ErrorTypeRequired, nil,
			fmt.Sprintf("the value is empty: only instances whose tag %s has an empty value match", quoteShort(key)),
			fmt.Sprintf("to require the tag with any value use `- key: %s`; otherwise write the value", quoteIfNeeded(key)))}
	}
	var out Findings
	if n := utf8.RuneCountInString(value); n > MaxTagValueLength {
		out = append(out, newFinding(CodeFilterValueTooLong, p, field.ErrorTypeTooLong, field.OmitValueType{},
			fmt.Sprintf("the tag value is %d characters long; AWS tag values have at most %d, so no instance can match", n, MaxTagValueLength),
			"use the instances' real tag value"))
	}
	if hasOuterSpace(value) {
		out = append(out, newFinding(CodeFilterWhitespace, p, field.ErrorTypeInvalid, truncate(value, 64),
			fmt.Sprintf("the tag value %s starts or ends with white space; tags are compared exactly", quoteShort(value)),
			"remove the white space unless the tag really has it"))
	}
	return out
}

// The cross-filter rules below are linear: each walks the filters once with a map from what it
// compares to the first filter(s) that had it.

// filterID identifies a well-formed filter's requirement: two filters are equal when their IDs are.
type filterID struct {
	kv         bool
	key, value string
}

func (f Filter) id() filterID {
	if f.IsKV() {
		return filterID{kv: true, key: f.KVPair.Key, value: f.KVPair.Value}
	}
	return filterID{key: *f.Key}
}

// firstTwo remembers, for one key, the first filter that used it and the first later one that
// differs from it (in value or spelling): for any later filter, the first earlier filter that
// differs from it is one of the two.
type firstTwo struct {
	first, other       int
	firstVal, otherVal string
	hasOther           bool
}

// see records filter i with value v and returns the index and value of the first earlier filter
// whose value differs from v (ok false when none).
func (t *firstTwo) see(i int, v string) (j int, jv string, ok bool) {
	switch {
	case t.firstVal != v:
		j, jv, ok = t.first, t.firstVal, true
	case t.hasOther:
		j, jv, ok = t.other, t.otherVal, true
	}
	if !t.hasOther && t.firstVal != v {
		t.other, t.otherVal, t.hasOther = i, v, true
	}
	return j, jv, ok
}

// checkFilterDuplicates: a filter equal to an earlier one is a warning.
func checkFilterDuplicates(filters []Filter, p *field.Path) Findings {
	var out Findings
	first := make(map[filterID]int, len(filters))
	for j, f := range filters {
		if !f.wellFormed() {
			continue
		}
		id := f.id()
		if i, ok := first[id]; ok {
			out = append(out, newFinding(CodeFilterDuplicate, p.Index(j), field.ErrorTypeDuplicate, field.OmitValueType{},
				fmt.Sprintf("duplicate of filters[%d] (%s)", i, f), "delete it"))
			continue
		}
		first[id] = j
	}
	return out
}

// checkFilterConflicts: the same key required to have two different values selects nothing.
func checkFilterConflicts(filters []Filter, p *field.Path) Findings {
	var out Findings
	byKey := map[string]*firstTwo{}
	for j, fj := range filters {
		if !fj.wellFormed() || !fj.IsKV() {
			continue
		}
		t, seen := byKey[fj.KVPair.Key]
		if !seen {
			byKey[fj.KVPair.Key] = &firstTwo{first: j, firstVal: fj.KVPair.Value}
			continue
		}
		if i, vi, ok := t.see(j, fj.KVPair.Value); ok {
			out = append(out, newFinding(CodeFilterConflict, p.Index(j).Child("kvPair", "value"), field.ErrorTypeInvalid, truncate(fj.KVPair.Value, 64),
				fmt.Sprintf("tag %s is required to be %s here but %s in filters[%d]; filters are ANDed, so no instance can match",
					quoteShort(fj.KVPair.Key), quoteShort(fj.KVPair.Value), quoteShort(vi), i),
				"keep one value; to route to instances with either value, use two Upstreams"))
		}
	}
	return out
}

// checkFilterRedundantKeys: `key: K` is implied by a kvPair on K.
func checkFilterRedundantKeys(filters []Filter, p *field.Path) Findings {
	firstKV := map[string]int{}
	for j, g := range filters {
		if g.wellFormed() && g.IsKV() {
			if _, ok := firstKV[g.KVPair.Key]; !ok {
				firstKV[g.KVPair.Key] = j
			}
		}
	}
	if len(firstKV) == 0 {
		return nil
	}
	var out Findings
	seen := map[string]bool{}
	for i, f := range filters {
		if !f.wellFormed() || f.IsKV() || seen[*f.Key] {
			continue
		}
		seen[*f.Key] = true
		if j, ok := firstKV[*f.Key]; ok {
			out = append(out, newFinding(CodeFilterRedundantKey, p.Index(i).Child("key"), field.ErrorTypeDuplicate, field.OmitValueType{},
				fmt.Sprintf("key %s is implied by filters[%d] (%s)", quoteShort(*f.Key), j, filters[j]), "delete this filter"))
		}
	}
	return out
}

// checkFilterKeyCase: keys that differ only in case select differently in Gloo (which lowercases).
func checkFilterKeyCase(filters []Filter, p *field.Path) Findings {
	var out Findings
	byLower := map[string]*firstTwo{}
	for j, fj := range filters {
		if !fj.wellFormed() {
			continue
		}
		kj := fj.TagKey()
		lk := strings.ToLower(kj)
		t, seen := byLower[lk]
		if !seen {
			byLower[lk] = &firstTwo{first: j, firstVal: kj}
			continue
		}
		if i, ki, ok := t.see(j, kj); ok {
			out = append(out, newFinding(CodeFilterKeyCaseCollision, p.Index(j), field.ErrorTypeInvalid, field.OmitValueType{},
				fmt.Sprintf("tag key %s differs from %s in filters[%d] only in case; AWS keys are case-sensitive but Gloo's EC2 plugin lowercases them, so Gloo and ec2guard may select different instances",
					quoteShort(kj), quoteShort(ki), i),
				"use one spelling, exactly as the instances are tagged"))
		}
	}
	return out
}

// shortK8sMessage drops the example and regex from an apimachinery name-validation message.
func shortK8sMessage(m string) string {
	if i := strings.Index(m, " (e.g."); i > 0 {
		return m[:i]
	}
	return m
}

func hasOuterSpace(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	l, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(r) || unicode.IsSpace(l)
}
