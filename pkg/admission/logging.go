package admission

import (
	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// requestLogConstructor is the webhook.Admission LogConstructor: the fields of controller-runtime's
// DefaultLogConstructor (object, user, request ID, ...), added only when something is logged.
// controller-runtime builds this logger twice for every request, and a slog handler formats the
// fields as soon as they are added, though below --log-level=debug nothing of it is printed.
func requestLogConstructor(base logr.Logger, req *admission.Request) logr.Logger {
	if req == nil || base.GetSink() == nil {
		return base
	}
	kv := []any{"object", klog.KRef(req.Namespace, req.Name), "namespace", req.Namespace, "name", req.Name,
		"resource", req.Resource, "user", req.UserInfo.Username, "requestID", req.UID}
	return logr.New(&deferredValues{sink: base.GetSink(), kv: kv})
}

// deferredValues is a logr.LogSink that adds its key/value pairs to the sink it wraps only when a
// line is written.
type deferredValues struct {
	sink  logr.LogSink
	kv    []any
	depth int
}

var _ logr.CallDepthLogSink = (*deferredValues)(nil)

// Init does nothing: the wrapped sink was initialized by its own logger (initializing it again
// would change it for every other user); resolve adds the frame this sink adds.
func (d *deferredValues) Init(logr.RuntimeInfo) {}

func (d *deferredValues) Enabled(level int) bool { return d.sink.Enabled(level) }

func (d *deferredValues) Info(level int, msg string, kv ...any) {
	d.resolve().Info(level, msg, kv...)
}

func (d *deferredValues) Error(err error, msg string, kv ...any) {
	d.resolve().Error(err, msg, kv...)
}

func (d *deferredValues) WithValues(kv ...any) logr.LogSink {
	all := make([]any, 0, len(d.kv)+len(kv))
	return &deferredValues{sink: d.sink, kv: append(append(all, d.kv...), kv...), depth: d.depth}
}

func (d *deferredValues) WithName(name string) logr.LogSink {
	return &deferredValues{sink: d.sink.WithName(name), kv: d.kv, depth: d.depth}
}

func (d *deferredValues) WithCallDepth(depth int) logr.LogSink {
	return &deferredValues{sink: d.sink, kv: d.kv, depth: d.depth + depth}
}

// resolve is the wrapped sink with the pairs added, one frame deeper for the call site.
func (d *deferredValues) resolve() logr.LogSink {
	s := d.sink.WithValues(d.kv...)
	if cd, ok := s.(logr.CallDepthLogSink); ok {
		s = cd.WithCallDepth(d.depth + 1)
	}
	return s
}
