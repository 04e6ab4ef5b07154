package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/pkg/report"
)

const reportUsage = `Usage:
  ec2guard report -f FILE [-f FILE...] [-o table|json|markdown|html]
  ec2guard report [--kubeconfig PATH] [-n NAMESPACE | -A] [-o table|json|markdown|html]

Renders ec2guard's consistency reports (openreports.io/v1alpha1 Reports, one per EC2 Upstream):
from files (YAML or JSON, several documents, Lists; "-" is stdin), or from the cluster (the
Reports labelled app.kubernetes.io/managed-by=ec2guard in NAMESPACE, default "default", or in
all namespaces with -A).

Exit codes: 0 every result passes or warns, 1 some result fails or errors, 2 usage or input error.
`

// reportTimeout bounds the cluster read.
const reportTimeout = 30 * time.Second

type reportOpts struct {
	files         multiFlag
	kubeconfig    string
	namespace     string
	allNamespaces bool
	output        string
}

// runReport implements `ec2guard report`.
func runReport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runReportWith(args, stdin, stdout, stderr, newDynamicClient)
}

// dynamicFactory builds the cluster client of --kubeconfig (replaced in tests).
type dynamicFactory func(kubeconfigPath string) (dynamic.Interface, error)

func newDynamicClient(path string) (dynamic.Interface, error) {
	cfg, err := kubeconfig.Load(kubeconfig.Options{Path: path, QPS: kubeconfig.DefaultQPS, Burst: kubeconfig.DefaultBurst})
	if err != nil {
		return nil, err
	}
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

func runReportWith(args []string, stdin io.Reader, stdout, stderr io.Writer, newClient dynamicFactory) int {
	var o reportOpts
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&o.files, "f", "report file, YAML or JSON (repeatable; - for stdin)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "read the reports from this cluster")
	fs.StringVar(&o.namespace, "n", "", "namespace of the reports (default \"default\")")
	fs.BoolVar(&o.allNamespaces, "A", false, "reports of all namespaces")
	fs.StringVar(&o.output, "o", report.FormatTable, "output: table, json, markdown or html")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, reportUsage)
			return 0
		}
		fmt.Fprintf(stderr, "ec2guard report: %v\n\n%s", err, reportUsage)
		return 2
	}
	if err := o.validate(fs.Args()); err != nil {
		fmt.Fprintf(stderr, "ec2guard report: %v\n\n%s", err, reportUsage)
		return 2
	}
	var reports []report.Report
	var err error
	if len(o.files) > 0 {
		reports, err = readReportFiles(o.files, stdin)
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), reportTimeout)
		reports, err = o.readCluster(ctx, newClient)
		cancel()
	}
	if err != nil {
		fmt.Fprintf(stderr, "ec2guard report: %v\n", err)
		return 2
	}
	report.Sort(reports)
	if err := report.Render(stdout, o.output, reports); err != nil {
		fmt.Fprintf(stderr, "ec2guard report: %v\n", err)
		return 2
	}
	if report.Failing(reports) {
		return 1
	}
	return 0
}

func (o reportOpts) validate(rest []string) error {
	switch {
	case len(rest) > 0:
		return fmt.Errorf("unexpected arguments %q", rest)
	case !slices.Contains(report.Formats(), o.output):
		return fmt.Errorf("-o %q: must be one of table, json, markdown, html", o.output)
	case len(o.files) > 0 && (o.kubeconfig != "" || o.namespace != "" || o.allNamespaces):
		return errors.New("-f reads files; --kubeconfig, -n and -A read the cluster: use one or the other")
	case o.allNamespaces && o.namespace != "":
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

// readCluster lists the Reports ec2guard manages in the namespace (or all namespaces).
func (o reportOpts) readCluster(ctx context.Context, newClient dynamicFactory) ([]report.Report, error) {
	c, err := newClient(o.kubeconfig)
	if err != nil {
		return nil, err
	}
	gvr := report.GVK().GroupVersion().WithResource("reports")
	ns := o.namespace
	if o.allNamespaces {
		ns = metav1.NamespaceAll
	} else if ns == "" {
		ns = metav1.NamespaceDefault
	}
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
