package k8senv

import (
	"fmt"
	"io"

	"github.com/go-logr/logr/funcr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// LogTo makes controller-runtime's logger, through which envtest and the webhook server log,
// write to w. Without a logger set, controller-runtime complains after 30s that none was; call
// it once, before Start (in TestMain).
func LogTo(w io.Writer) {
	ctrllog.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(w, prefix, args) }, funcr.Options{}))
}
