package report

import (
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Equal reports whether two reports say the same thing: the fields ec2guard writes (labels and
// owner references it sets, source, scope, summary, results) compared without the results'
// timestamps and without server-set metadata. The writer writes only when it is false.
func Equal(a, b *Report) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Name != b.Name || a.Namespace != b.Namespace || a.Source != b.Source {
		return false
	}
	for _, k := range []string{LabelManagedBy, LabelUpstream} {
		if a.Labels[k] != b.Labels[k] {
			return false
		}
	}
	if !equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences) ||
		!equality.Semantic.DeepEqual(a.Scope, b.Scope) ||
		a.Summary != b.Summary || len(a.Results) != len(b.Results) {
		return false
	}
	for i := range a.Results {
		x, y := a.Results[i], b.Results[i]
		x.Timestamp, y.Timestamp = metav1.Timestamp{}, metav1.Timestamp{}
		if len(x.Properties) == 0 {
			x.Properties = nil
		}
		if len(y.Properties) == 0 {
			y.Properties = nil
		}
		if !equality.Semantic.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
