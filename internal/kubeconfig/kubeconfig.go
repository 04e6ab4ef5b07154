// Package kubeconfig finds the Kubernetes API configuration for ec2guard's commands.
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	crconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
)

// Load returns the configuration from the kubeconfig file at path when one is given (the
// --kubeconfig flag), else from $KUBECONFIG, ~/.kube/config or the in-cluster service account, in
// controller-runtime's order.
func Load(path string) (*rest.Config, error) {
	if path != "" {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
	c, err := crconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("find the Kubernetes API (set --kubeconfig or $KUBECONFIG, or run in a cluster): %w", err)
	}
	return c, nil
}
