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

	"github.com/ec2guard/ec2guard/pkg/codes"
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
		out = append(out, newFinding(codes.CheckInterrupted, p, field.ErrorTypeInternal, field.OmitValueType{}, stopped))
	}
	return out
}

// ---- region ----

// checkRegion: region is required and must match an AWS partition's region pattern (SDK metadata).
func checkRegion(region string, p *field.Path) Findings {
	if region == "" {
		return Findings{newFinding(codes.RegionRequired, p, field.ErrorTypeRequired, nil)}
	}
	info := LookupRegion(region)
	switch {
	case info.Pseudo:
		suggestion := ""
		if part, ok := lookupPartition(info.Partition); ok && part.ImplicitGlobalRegion != "" {
			suggestion = ", e.g. " + part.ImplicitGlobalRegion
		}
		return Findings{newFinding(codes.RegionInvalid, p, field.ErrorTypeInvalid, region,
			quoteShort(region), "it is a global pseudo-region of partition "+info.Partition, suggestion)}
	case !info.Valid:
		suggestion := ", such as us-east-1"
		if s, why := suggestRegion(region); s != "" {
			suggestion = fmt.Sprintf(": did you mean %s? (%s)", s, why)
		}
		return Findings{newFinding(codes.RegionInvalid, p, field.ErrorTypeInvalid, truncate(region, 64),
			quoteShort(region), "it matches no AWS partition's region pattern", suggestion)}
	case !info.Known:
		suggestion := ""
		if s, _ := suggestRegion(region); s != "" && s != region {
			suggestion = fmt.Sprintf(" (did you mean %s?)", s)
		}
		return Findings{newFinding(codes.RegionUnknown, p, field.ErrorTypeNotSupported, region, region, info.Partition, suggestion)}
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
	const fixRole = "arn:aws:iam::123456789012:role/NAME"
	a, err := arn.Parse(roleARN)
	if err != nil {
		return Findings{newFinding(codes.RoleARNInvalid, p, field.ErrorTypeInvalid, truncate(roleARN, 128), quoteShort(roleARN))}
	}
	notRole := func(why, form string) Findings {
		return Findings{newFinding(codes.RoleARNNotRole, p, field.ErrorTypeInvalid, truncate(roleARN, 128), quoteShort(roleARN), why, form)}
	}
	if !IsPartition(a.Partition) {
		return notRole(fmt.Sprintf("unknown partition %q", a.Partition), fixRole)
	}
	if a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/") {
		role, _, _ := strings.Cut(strings.TrimPrefix(a.Resource, "assumed-role/"), "/")
		return notRole("it is an assumed-role session ARN",
			fmt.Sprintf("the role it came from, arn:%s:iam::%s:role/%s (add the role's path if it has one)", a.Partition, a.AccountID, role))
	}
	if a.Service != "iam" {
		return notRole(fmt.Sprintf("service is %q, not iam", a.Service), fixRole)
	}
	if a.Region != "" {
		return notRole(fmt.Sprintf("IAM ARNs have no region, this one has %q", a.Region), "arn:PARTITION:iam::ACCOUNT:role/NAME, without a region")
	}
	if !accountIDRe.MatchString(a.AccountID) {
		return notRole(fmt.Sprintf("account %q is not a 12-digit account id", a.AccountID), fixRole)
	}
	kind, rest, _ := strings.Cut(a.Resource, "/")
	if kind != "role" {
		why := fmt.Sprintf("resource is %q, not role/NAME", truncate(a.Resource, 64))
		if kind == "user" {
			why += " (roleArn is for a role to assume; to use a user's access keys, put them in the secret and remove roleArn)"
		}
		return notRole(why, fixRole)
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
		return Findings{newFinding(codes.RoleARNPartition, p, field.ErrorTypeInvalid, roleARN, a.Partition, region, info.Partition)}
	}
	return nil
}

// ---- port ----

// checkPort: the port must be 1–65535 (0 means unset; negative values are caught while decoding).
func checkPort(port uint32, p *field.Path) Findings {
	if port > 65535 {
		return Findings{newFinding(codes.PortRange, p, field.ErrorTypeInvalid, int64(port), port)}
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
		out = append(out, newFinding(codes.SecretRefNameRequired, p.Child("name"), field.ErrorTypeRequired, nil))
	default:
		if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
			out = append(out, newFinding(codes.SecretRefInvalidName, p.Child("name"), field.ErrorTypeInvalid, truncate(ref.Name, 64),
				"name", quoteShort(ref.Name), shortK8sMessage(errs[0])))
		}
	}
	switch {
	case ref.Namespace == "":
		ns := upstreamNamespace
		if ns == "" {
			ns = "(the Upstream's namespace)"
		}
		out = append(out, newFinding(codes.SecretRefNamespaceDefaulted, p.Child("namespace"), field.ErrorTypeRequired, nil, ns))
	default:
		if errs := validation.IsDNS1123Label(ref.Namespace); len(errs) > 0 {
			out = append(out, newFinding(codes.SecretRefInvalidName, p.Child("namespace"), field.ErrorTypeInvalid, truncate(ref.Namespace, 64),
				"namespace", quoteShort(ref.Namespace), shortK8sMessage(errs[0])))
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
		return Findings{newFinding(codes.PortTagInvalid, p, field.ErrorTypeInvalid, v, "it is empty")}
	case n > MaxTagKeyLength:
		return Findings{newFinding(codes.PortTagInvalid, p, field.ErrorTypeInvalid, field.OmitValueType{},
			fmt.Sprintf("it is %d characters long; tag keys have at most %d", n, MaxTagKeyLength))}
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
	return Findings{newFinding(codes.TooManyFilters, p, field.ErrorTypeTooMany, int64(len(filters)), len(filters), MaxFilters)}
}

// checkNoFilters: no filters selects every running instance the credentials can list.
func checkNoFilters(filters []Filter, p *field.Path) Findings {
	if len(filters) > 0 {
		return nil
	}
	return Findings{newFinding(codes.NoFilters, p, field.ErrorTypeRequired, nil)}
}

// checkFilterKeyOrKVPair: exactly one of key or kvPair.
func checkFilterKeyOrKVPair(f Filter, p *field.Path) Findings {
	switch {
	case f.Key != nil && f.KVPair != nil:
		return Findings{newFinding(codes.FilterKeyOrKVPair, p, field.ErrorTypeInvalid, field.OmitValueType{}, fmt.Sprintf("both (%s)", f))}
	case f.Key == nil && f.KVPair == nil:
		return Findings{newFinding(codes.FilterKeyOrKVPair, p, field.ErrorTypeRequired, nil, "neither")}
	}
	return nil
}

// checkFilterKey: a tag key is non-empty, at most 128 characters, without surrounding white space;
// `*`/`?` in it get a note.
func checkFilterKey(key string, p *field.Path) Findings {
	if key == "" {
		return Findings{newFinding(codes.FilterKeyEmpty, p, field.ErrorTypeRequired, nil)}
	}
	var out Findings
	if n := utf8.RuneCountInString(key); n > MaxTagKeyLength {
		out = append(out, newFinding(codes.FilterKeyTooLong, p, field.ErrorTypeTooLong, field.OmitValueType{}, n, MaxTagKeyLength))
	}
	if hasOuterSpace(key) {
		out = append(out, newFinding(codes.FilterWhitespace, p, field.ErrorTypeInvalid, truncate(key, 64), "key", quoteShort(key)))
	}
	if strings.ContainsAny(key, "*?") {
		out = append(out, newFinding(codes.FilterKeyWildcard, p, field.ErrorTypeInvalid, truncate(key, 64), quoteShort(key)))
	}
	return out
}

// checkFilterValue: a kvPair value is at most 256 characters; empty and white-space values get warnings.
func checkFilterValue(value, key string, p *field.Path) Findings {
	if value == "" {
		return Findings{newFinding(codes.FilterEmptyValue, p, field.ErrorTypeRequired, nil, quoteShort(key), quoteIfNeeded(key))}
	}
	var out Findings
	if n := utf8.RuneCountInString(value); n > MaxTagValueLength {
		out = append(out, newFinding(codes.FilterValueTooLong, p, field.ErrorTypeTooLong, field.OmitValueType{}, n, MaxTagValueLength))
	}
	if hasOuterSpace(value) {
		out = append(out, newFinding(codes.FilterWhitespace, p, field.ErrorTypeInvalid, truncate(value, 64), "value", quoteShort(value)))
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
			out = append(out, newFinding(codes.FilterDuplicate, p.Index(j), field.ErrorTypeDuplicate, field.OmitValueType{}, i, f))
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
			out = append(out, newFinding(codes.FilterConflict, p.Index(j).Child("kvPair", "value"), field.ErrorTypeInvalid, truncate(fj.KVPair.Value, 64),
				quoteShort(fj.KVPair.Key), quoteShort(fj.KVPair.Value), quoteShort(vi), i))
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
			out = append(out, newFinding(codes.FilterRedundantKey, p.Index(i).Child("key"), field.ErrorTypeDuplicate, field.OmitValueType{},
				quoteShort(*f.Key), j, filters[j]))
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
			out = append(out, newFinding(codes.FilterKeyCaseCollision, p.Index(j), field.ErrorTypeInvalid, field.OmitValueType{},
				quoteShort(kj), quoteShort(ki), i))
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
