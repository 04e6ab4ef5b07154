package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ec2guard/ec2guard/pkg/report"
)

const reportLong = `Renders ec2guard's consistency reports (openreports.io/v1alpha1 Reports, one per EC2 Upstream):
from files (YAML or JSON, several documents, Lists; "-" is stdin), or from the cluster (the Reports
labelled app.kubernetes.io/managed-by=ec2guard in -n NAMESPACE, else the kubeconfig context's
namespace, or in all namespaces with -A).

Exit codes: 0 every result passes or warns, 1 some result fails or errors, 2 usage or input error.`

const reportExample = `  # The reports of the kubeconfig context's namespace, as a table
  ec2guard report

  # Every namespace, as Markdown for a ticket
  ec2guard report -A -o markdown

  # Reports saved earlier
  kubectl get reports.openreports.io -A -o yaml > reports.yaml
  ec2guard report -f reports.yaml -o html > reports.html`

// reportTimeout bounds the cluster read.
const reportTimeout = 30 * time.Second

type reportOpts struct {
	files         []string
	allNamespaces bool
	output        string
}

func (a *app) reportCommand() *cobra.Command {
	var o reportOpts
	cmd := &cobra.Command{
		Use:     "report [-f FILENAME... | -n NAMESPACE | -A] [-o table|json|markdown|html]",
		Short:   "Render the discoverer's consistency reports",
		Long:    reportLong,
		Example: reportExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args, cmd.Flags().Changed("namespace"), cmd.Flags().Changed("kubeconfig") || cmd.Flags().Changed("context")); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return a.runReport(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "report file, YAML or JSON (repeatable; - for stdin)")
	addOutputFlag(cmd, &o.output, report.Formats()...)
	a.addKubeFlags(fs, &o.allNamespaces)
	return cmd
}

func (a *app) runReport(ctx context.Context, o reportOpts) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var reports []report.Report
	var err error
	if len(o.files) > 0 {
		reports, err = readReportFiles(o.files, a.stdin)
	} else {
		cctx, cancel := context.WithTimeout(ctx, reportTimeout)
		reports, err = a.readReports(cctx, o.allNamespaces)
		cancel()
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	report.Sort(reports)
	if err := report.Render(a.stdout, o.output, reports); err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if report.Failing(reports) {
		return exitWith(exitRejected)
	}
	return nil
}

func (o reportOpts) validate(rest []string, namespace, cluster bool) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected arguments %q", rest)
	case !slices.Contains(report.Formats(), o.output):
		return fmt.Errorf("-o %q: must be one of table, json, markdown, html", o.output)
	case len(o.files) > 0 && (cluster || namespace || o.allNamespaces):
		return errors.New("-f reads files; --kubeconfig, --context, -n and -A read the cluster: use one or the other")
	case o.allNamespaces && namespace:
		return errors.New("-n and -A exclude each other")
	}
	return nil
}

func readReportFiles(paths []string, stdin io.Reader) ([]report.Report, error) {
	var out []report.Report
	for _, p := range paths {
		var rs []report.Report
		var err error
		if p == "-" {
			rs, err = report.Decode(stdin, "stdin")
		} else {
			rs, err = readReportFile(p)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func readReportFile(path string) ([]report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read reports: %w", err)
	}
	defer f.Close()
	return report.Decode(f, path)
}

// readReports lists the Reports ec2guard manages in the namespace (or all namespaces).
func (a *app) readReports(ctx context.Context, allNamespaces bool) ([]report.Report, error) {
	ns := metav1.NamespaceAll
	if !allNamespaces {
		var err error
		if ns, err = a.namespace(); err != nil {
			return nil, err
		}
	}
	c, err := a.newDynamic()
	if err != nil {
		return nil, err
	}
	gvr := report.GVK().GroupVersion().WithResource("reports")
	list, err := c.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: report.LabelManagedBy + "=" + report.ManagedBy})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("list reports: the OpenReports CRD (reports.openreports.io) is not installed: %w", err)
		}
		return nil, fmt.Errorf("list reports in %s: %w", nsName(ns), err)
	}
	out := make([]report.Report, 0, len(list.Items))
	for i := range list.Items {
		var r report.Report
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &r); err != nil {
			return nil, fmt.Errorf("report %s/%s: %w", list.Items[i].GetNamespace(), list.Items[i].GetName(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

func nsName(ns string) string {
	if ns == metav1.NamespaceAll {
		return "all namespaces"
	}
	return "namespace " + ns
}
