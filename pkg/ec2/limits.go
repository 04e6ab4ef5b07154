package ec2

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ec2guard/ec2guard/pkg/codes"
)

// Bounds on what one check reports, so that a large or hostile object costs a bounded answer:
// at most MaxReportedErrors errors and MaxReportedWarnings warnings are kept (in rule order), the
// rest are summed up in one EC2G007 finding, and every message is cut to MaxFindingMessageLength
// bytes.
const (
	MaxReportedErrors       = codes.MaxReportedErrors
	MaxReportedWarnings     = codes.MaxReportedWarnings
	MaxFindingMessageLength = codes.MaxFindingMessageLength
)

// findingSet collects findings up to the bounds above and counts what it leaves out. Its zero
// value is ready to use.
type findingSet struct {
	kept           Findings
	errs, warns    int          // kept findings per severity
	moreErrs       int          // errors left out
	moreWarns      int          // warnings left out
	moreCodes      map[Code]int // codes of the findings left out
	wrongTypePaths map[string]bool
}

// add keeps f when its severity still has room, otherwise counts it.
func (s *findingSet) add(f Finding) {
	if f.Code == codes.WrongType {
		// Remembered even when the finding itself is left out: the rules must not report the
		// same field again as empty (see suppressed).
		if s.wrongTypePaths == nil {
			s.wrongTypePaths = map[string]bool{}
		}
		s.wrongTypePaths[f.Field] = true
	}
	room := false
	switch f.Severity {
	case SeverityError:
		room = s.errs < MaxReportedErrors
		if room {
			s.errs++
		} else {
			s.moreErrs++
		}
	default:
		room = s.warns < MaxReportedWarnings
		if room {
			s.warns++
		} else {
			s.moreWarns++
		}
	}
	if room {
		f.Field = truncate(f.Field, MaxFindingMessageLength)
		f.Message = truncate(f.Message, MaxFindingMessageLength)
		f.Fix = truncate(f.Fix, MaxFindingMessageLength)
		s.kept = append(s.kept, f)
		return
	}
	if s.moreCodes == nil {
		s.moreCodes = map[Code]int{}
	}
	s.moreCodes[f.Code]++
}

// addAll adds every finding of fs.
func (s *findingSet) addAll(fs Findings) {
	for _, f := range fs {
		s.add(f)
	}
}

// merge adds the kept findings of o and its counts of left-out findings (not its wrong-type
// paths: ask o.suppressed).
func (s *findingSet) merge(o *findingSet) {
	s.addAll(o.kept)
	s.moreErrs += o.moreErrs
	s.moreWarns += o.moreWarns
	for c, n := range o.moreCodes {
		if s.moreCodes == nil {
			s.moreCodes = map[Code]int{}
		}
		s.moreCodes[c] += n
	}
}

// suppressed reports whether path is, or is inside, a field that could not be decoded: such a
// field reads as empty and must not be reported again as empty or missing. It costs one map
// lookup per path element.
func (s *findingSet) suppressed(path string) bool {
	if len(s.wrongTypePaths) == 0 {
		return false
	}
	for p := path; p != ""; p = parentPath(p) {
		if s.wrongTypePaths[p] {
			return true
		}
	}
	return false
}

// parentPath cuts the last element off a field path as field.Path renders it:
// `a.b[1].c` -> `a.b[1]` -> `a.b` -> `a` -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// findings returns the kept findings followed, when some were left out, by one EC2G007 finding
// that counts them. That finding is an error when any error was left out, so that leaving
// findings out never turns a rejected object into an accepted one.
func (s *findingSet) findings(p *field.Path) Findings {
	more := s.moreErrs + s.moreWarns
	out := make(Findings, 0, len(s.kept)+1)
	out = append(out, s.kept...)
	if more == 0 {
		return out
	}
	counts := make([]string, 0, len(s.moreCodes))
	for c, n := range s.moreCodes {
		counts = append(counts, fmt.Sprintf("%s ×%d", c, n))
	}
	sort.Strings(counts)
	f := newFinding(codes.MoreFindings, p, field.ErrorTypeTooMany, int64(more), more, s.moreErrs, s.moreWarns, strings.Join(counts, ", "))
	if s.moreErrs == 0 {
		f.Severity = SeverityWarning
	}
	f.Message = truncate(f.Message, MaxFindingMessageLength)
	return append(out, f)
}
