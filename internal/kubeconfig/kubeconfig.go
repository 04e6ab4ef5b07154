// Package kubeconfig finds the Kubernetes API configuration for ec2guard's commands.
package kubeconfig

import (
	"flag"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	crconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
)

// Client-side rate limits of the API client. client-go's defaults (5 QPS, burst 10 with a kubeconfig
// file; controller-runtime raises them to 20/30 in a cluster) throttle the webhook's
// SubjectAccessReviews and the discoverer's writes long before the API server is busy, and differ by
// where the configuration came from. ec2guard sets its own, the same from a file or in a cluster.
const (
	DefaultQPS   = 100
	DefaultBurst = 200
)

// Options are the client settings every command takes from its flags.
type Options struct {
	// Path is the kubeconfig file (--kubeconfig); empty: $KUBECONFIG, ~/.kube/config or in-cluster.
	Path string
	// QPS and Burst are the client-side rate limits (--kube-api-qps, --kube-api-burst).
	QPS   float64
	Burst int
}

// DefaultOptions are the options with the default rate limits.
func DefaultOptions() Options { return Options{QPS: DefaultQPS, Burst: DefaultBurst} }

// AddFlags registers --kubeconfig, --kube-api-qps and --kube-api-burst on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Path, "kubeconfig", o.Path, "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then the in-cluster configuration)")
	fs.Float64Var(&o.QPS, "kube-api-qps", o.QPS, "client-side limit of Kubernetes API requests per second")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "client-side burst of Kubernetes API requests above --kube-api-qps")
}

// Validate checks the rate limits.
func (o Options) Validate() error {
	if o.QPS <= 0 {
		return fmt.Errorf("--kube-api-qps must be positive, got %v", o.QPS)
	}
	if o.Burst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.Burst)
	}
	return nil
}

// Load returns the configuration from the kubeconfig file at o.Path when one is given, else from
// $KUBECONFIG, ~/.kube/config or the in-cluster service account, in controller-runtime's order,
// with o's rate limits applied whatever the source.
func Load(o Options) (*rest.Config, error) {
	var c *rest.Config
	if o.Path != "" {
		var err error
		c, err = clientcmd.BuildConfigFromFlags("", o.Path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", o.Path, err)
		}
	} else {
		var err error
		c, err = crconfig.GetConfig()
		if err != nil {
			return nil, fmt.Errorf("find the Kubernetes API (set --kubeconfig or $KUBECONFIG, or run in a cluster): %w", err)
		}
	}
	if o.QPS > 0 {
		c.QPS = float32(o.QPS)
	}
	if o.Burst > 0 {
		c.Burst = o.Burst
	}
	return c, nil
}
