package discovery

import (
	"context"
	"errors"

	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/discovered"
)

// tally adds up the Kubernetes API writes and the errors of several steps that each return
// (writes, error).
type tally struct {
	writes int
	errs   []error
}

func (t *tally) add(writes int, err error) {
	t.writes += writes
	t.errs = append(t.errs, err)
}

func (t *tally) result() (int, error) { return t.writes, errors.Join(t.errs...) }

// stopped records ctx's error and reports whether ctx ended: loops over Upstreams stop writing
// then (what is left is done again by the next regroup or refresh, or by the next leader).
func (t *tally) stopped(ctx context.Context) bool {
	if err := ctx.Err(); err != nil {
		t.errs = append(t.errs, err)
		return true
	}
	return false
}

// writeStatus writes an Upstream's ec2guard.io/discovered annotation and, with a report sink,
// its consistency report. It returns the number of writes.
func (d *Discoverer) writeStatus(ctx context.Context, t *Target, st discovered.Status) (int, error) {
	var n tally
	n.add(d.annotator.Write(ctx, t.Key(), t.UID, st))
	if d.deps.Reports != nil {
		n.add(d.deps.Reports.Write(ctx, t.Upstream, t.UID, st))
	}
	return n.result()
}

// deletePublished deletes what was published for the Upstream key (UID uid): its Service and
// EndpointSlices (when publishing) and, with deleteReport, its report. It returns the number of
// writes.
func (d *Discoverer) deletePublished(ctx context.Context, key types.NamespacedName, uid types.UID, deleteReport bool) (int, error) {
	var n tally
	if d.publisher != nil {
		n.add(d.publisher.DeleteFor(ctx, key.Namespace, uid))
	}
	if deleteReport && d.deps.Reports != nil {
		n.add(d.deps.Reports.Delete(ctx, key))
	}
	return n.result()
}
