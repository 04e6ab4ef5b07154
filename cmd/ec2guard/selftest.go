package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ec2guard/ec2guard/internal/selftest"
)

const selftestLong = `Checks an installed ec2guard from inside the cluster: a server-side dry run of an
EC2 Upstream whose secretRef names a Secret that does not exist must come back with
ec2guard's verdict (` + selftest.ExpectedCode + `). Nothing is stored. This is what the chart's helm test runs.

Exit 0 when ec2guard answered, 1 otherwise (admitted, refused by something else, or the
webhook unreachable), 2 on a usage error.`

const selftestExample = `  # After helm install, in the namespace the chart's helm test uses
  ec2guard selftest -n ec2guard-selftest

  # The same as the chart does
  helm test ec2guard -n ec2guard-system`

func (a *app) selftestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "selftest",
		Short:   "Check that the installed webhook judges EC2 Upstreams (the chart's helm test)",
		Long:    selftestLong,
		Example: selftestExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.restConfig()
			if err != nil {
				return usageErrorf("%v", err)
			}
			ns, err := a.namespace()
			if err != nil {
				return usageErrorf("%v", err)
			}
			c, err := client.New(cfg, client.Options{Scheme: runtime.NewScheme()})
			if err != nil {
				return usageErrorf("kubernetes client: %v", err)
			}
			if err := selftest.Run(cmd.Context(), c, ns); err != nil {
				return &exitError{code: exitRejected, err: err}
			}
			fmt.Fprintf(a.stdout, "ec2guard answered in namespace %s: a dry-run EC2 Upstream with a missing secret got %s\n", ns, selftest.ExpectedCode)
			return nil
		},
	}
	a.addKubeFlags(cmd.Flags(), nil)
	return cmd
}
