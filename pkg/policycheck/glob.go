package policycheck

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

// This file matches IAM patterns (Action, Resource, StringLike/ArnLike values, substituted policy
// variables) without regular expressions. A pattern in the glob form the compiler writes (see
// pattern.go) is text where
//
//	*      matches any run of characters (none included)
//	?      matches one character
//	\c     matches the character c literally (the compiler escapes *, ?, \ and, in text substituted
//	       for a variable, ":")
//
// and, in ARN mode, an unescaped ":" is a segment separator: the wildcards before the fifth one stay
// inside their segment (they do not match ":"), those after it match freely. Colons that come from
// a substituted variable are escaped, so they separate nothing, as IAM reads the ARN segments from
// the policy text.
//
// globMatch runs in O(len(pattern)·len(value)) time in the worst case and allocates nothing: it
// walks both strings once, returning only to the last "*" seen (the classic two-pointer wildcard
// match). Regular expressions of substituted patterns used to be compiled and kept in OPA's
// process-wide cache; a policy set within IAM's quotas could fill it with about 1 GB.

// globMode says how a glob pattern is matched.
type globMode string

const (
	// globFlat: wildcards match any character (Action, StringLike).
	globFlat globMode = "flat"
	// globARN: wildcards stay inside the first five colon-separated segments (Resource, ArnLike).
	globARN globMode = "arn"
	// globFold: case-insensitive (StringEqualsIgnoreCase), wildcards as in globFlat.
	globFold globMode = "fold"
)

// arnPrefixSegments is the number of ARN segments (arn, partition, service, region, account) inside
// which wildcards stay; the resource part follows the fifth colon.
const arnPrefixSegments = 5

// globEscape escapes the wildcard characters and the backslash of literal text for a glob pattern;
// with colons it also escapes ":" (text substituted for a variable, whose colons separate no ARN
// segment). The Rego's glob_escape does the same for substituted values.
func globEscape(s string, colons bool) string {
	if !strings.ContainsAny(s, `*?\:`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '*' || c == '?' || c == '\\' || (colons && c == ':') {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}

// globToken is one element of a glob pattern.
type globToken struct {
	kind byte   // '*', '?' or 'l' (literal)
	lit  string // the literal character's bytes
	w    int    // bytes the token takes in the pattern
	// sep: an unescaped ":" (an ARN segment separator).
	sep bool
}

// nextToken reads the token at p[i:].
func nextToken(p string, i int) globToken {
	c := p[i]
	switch c {
	case '*', '?':
		return globToken{kind: c, w: 1}
	case '\\':
		if i+1 < len(p) {
			_, n := utf8.DecodeRuneInString(p[i+1:])
			return globToken{kind: 'l', lit: p[i+1 : i+1+n], w: 1 + n}
		}
		return globToken{kind: 'l', lit: `\`, w: 1}
	}
	_, n := utf8.DecodeRuneInString(p[i:])
	return globToken{kind: 'l', lit: p[i : i+n], w: n, sep: c == ':'}
}

// globMatch reports whether value matches the glob pattern in the given mode.
func globMatch(mode globMode, pattern, value string) bool {
	fold := mode == globFold
	if mode != globARN {
		return globMatchFree(pattern, value, fold)
	}
	// ARN mode. Wildcards before the fifth unescaped colon never match ":", so every colon of the
	// value up to there is matched by a colon of the pattern (escaped or not), in order: cut both
	// at those colons and match the pieces, then the rest freely.
	pi, vi := 0, 0
	seps := 0
	pieceStart := 0
	for pi < len(pattern) {
		t := nextToken(pattern, pi)
		if t.kind != 'l' || t.lit != ":" {
			pi += t.w
			continue
		}
		// A colon of the pattern: the value's next colon ends the same piece.
		j := strings.IndexByte(value[vi:], ':')
		if j < 0 {
			return false
		}
		if !globMatchFree(pattern[pieceStart:pi], value[vi:vi+j], fold) {
			return false
		}
		pi += t.w
		vi += j + 1
		pieceStart = pi
		if t.sep {
			seps++
			if seps == arnPrefixSegments {
				return globMatchFree(pattern[pi:], value[vi:], fold)
			}
		}
	}
	// Fewer than five segment separators: the whole pattern stays inside segments, so the value
	// has no colon left.
	if strings.IndexByte(value[vi:], ':') >= 0 {
		return false
	}
	return globMatchFree(pattern[pieceStart:], value[vi:], fold)
}

// globMatchFree matches with wildcards that match any character.
func globMatchFree(pattern, value string, fold bool) bool {
	pi, vi := 0, 0
	// Where to resume after a mismatch: the last "*" of the pattern and the value position it
	// would consume one more character from (-1: no "*" seen).
	starP, starV := -1, -1
	for pi < len(pattern) || vi < len(value) {
		if pi < len(pattern) {
			t := nextToken(pattern, pi)
			switch t.kind {
			case '*':
				starP, starV = pi, vi
				pi += t.w
				continue
			case '?':
				if vi < len(value) {
					_, n := utf8.DecodeRuneInString(value[vi:])
					pi += t.w
					vi += n
					continue
				}
			default:
				if vi < len(value) {
					if n, ok := literalAt(t.lit, value[vi:], fold); ok {
						pi += t.w
						vi += n
						continue
					}
				}
			}
		}
		if starP >= 0 && starV < len(value) {
			_, n := utf8.DecodeRuneInString(value[starV:])
			starV += n
			pi, vi = starP+1, starV
			continue
		}
		return false
	}
	return true
}

// literalAt reports whether v starts with the character lit and how many bytes it takes.
func literalAt(lit, v string, fold bool) (int, bool) {
	if strings.HasPrefix(v, lit) {
		return len(lit), true
	}
	if !fold {
		return 0, false
	}
	a, _ := utf8.DecodeRuneInString(lit)
	b, n := utf8.DecodeRuneInString(v)
	if a == utf8.RuneError || b == utf8.RuneError {
		return 0, false
	}
	return n, equalFoldRune(a, b)
}

// equalFoldRune reports whether a and b are equal under Unicode simple case folding (as
// strings.EqualFold and regexp's (?i)).
func equalFoldRune(a, b rune) bool {
	if a == b {
		return true
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

// globBuiltinName is the Rego function the engine's queries call for glob patterns:
// ec2guard.glob_match(mode, pattern, value).
const globBuiltinName = "ec2guard.glob_match"

var globBuiltinDecl = &rego.Function{
	Name:        globBuiltinName,
	Description: "IAM wildcard match without regular expressions (pkg/policycheck/glob.go)",
	Decl:        types.NewFunction(types.Args(types.S, types.S, types.S), types.B),
}

// globBuiltin returns the option that declares ec2guard.glob_match on one rego.Rego: the
// function belongs to the queries the engine prepares, not to OPA's global builtin table.
func globBuiltin() func(*rego.Rego) {
	return rego.Function3(globBuiltinDecl, func(_ rego.BuiltinContext, m, p, v *ast.Term) (*ast.Term, error) {
		mode, ok1 := m.Value.(ast.String)
		pattern, ok2 := p.Value.(ast.String)
		value, ok3 := v.Value.(ast.String)
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("%s: arguments must be strings", globBuiltinName)
		}
		switch globMode(mode) {
		case globFlat, globARN, globFold:
		default:
			return nil, fmt.Errorf("%s: unknown mode %q", globBuiltinName, string(mode))
		}
		return ast.InternedTerm(globMatch(globMode(mode), string(pattern), string(value))), nil
	})
}
