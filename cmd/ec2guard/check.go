package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/codes"
	"github.com/ec2guard/ec2guard/pkg/ec2"
)

const checkLong = `Gives the verdict the admission webhook would give for every EC2 Upstream, offline from
manifests or live from a cluster.

From manifests (-f): FILE is a YAML or JSON file with one or more documents (Upstreams, Secrets, Lists
of them; other kinds are noted on stderr and ignored), a directory (its *.yaml, *.yml and *.json
files; with -R also those of its subdirectories), or - for standard input. Input is read strictly: a
document that does not parse, a key written twice, or a field inside awsEc2 that Gloo does not know
is an input error naming file:line and the field (exit 2). A Secret referenced by an Upstream is
checked when it is among the inputs; otherwise that is a warning (` + string(codes.SecretNotFound) + `). An Upstream without a
namespace is taken to be in -n's namespace, else "default".

From a cluster (--from-cluster, or -n/-A without -f): the Upstreams of the kubeconfig context's
namespace (-n NAMESPACE, or every namespace with -A), and the Secrets they reference, read with your
kubeconfig; secret values are never printed. A secret you may not read is a warning, not a verdict.

--policy FILE gives an IAM identity policy document (JSON) of the Upstream's principal; every file
given applies to every Upstream. With policies, ec2:DescribeInstances in each Upstream's region is
evaluated by the same engine the webhook uses ("source": "local") and the consistency class is set;
an implicit or explicit deny rejects the Upstream with the statements and the fix. Without --policy,
IAM is reported as not evaluated ("iam": {"decision": "not-evaluated", "source": "none"},
"consistency": "unknown"): nothing is guessed.

A run that finds no EC2 Upstream is an input error (exit 2) that says what it found, unless
--allow-empty is given.

Exit codes: 0 every EC2 Upstream accepted, 1 at least one rejected, 2 usage or input error.
Problem codes: docs/codes.md.`

const checkExample = `  # An Upstream and its Secret
  ec2guard check -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml

  # ... and the principal's IAM policy: rejected, with the statement and the fix
  ec2guard check -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml --policy examples/seed-policy.json

  # Every manifest under a directory, for a script
  ec2guard check -R -f manifests/ -ojson

  # From standard input
  kubectl get upstreams -A -o yaml | ec2guard check -f -

  # The Upstreams already in a cluster: the kubeconfig context's namespace, or all of them
  ec2guard check --from-cluster
  ec2guard check -A --context staging`

// Values reported when IAM is not evaluated (no --policy).
const (
	iamNotEvaluated    = "not-evaluated"
	iamSourceNone      = "none"
	consistencyUnknown = "unknown"
)

// checkTimeout bounds reading a cluster.
const checkTimeout = 2 * time.Minute

// checkOptions are the parsed flags.
type checkOptions struct {
	files         []string
	recursive     bool
	policies      []string
	output        string
	allowEmpty    bool
	fromCluster   bool
	allNamespaces bool
}

func (a *app) checkCommand() *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:     "check (-f FILENAME... [-R] | --from-cluster [-n NAMESPACE | -A]) [--policy FILE...] [-o text|json|yaml]",
		Short:   "The webhook's verdict for Upstreams in manifests or in a cluster",
		Long:    checkLong,
		Example: checkExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unexpected argument %q (give files with -f)", args[0])
			}
			fl := cmd.Flags()
			clusterMode := o.fromCluster || o.allNamespaces || (len(o.files) == 0 && fl.Changed("namespace"))
			switch {
			case len(o.files) > 0 && (o.fromCluster || o.allNamespaces):
				return usageErrorf("-f reads files; --from-cluster and -A read the cluster: use one or the other")
			case !clusterMode && len(o.files) == 0:
				return usageErrorf("give -f FILENAME (a file, a directory or - for stdin), or --from-cluster to check a cluster's Upstreams (see ec2guard check --help)")
			case o.allNamespaces && fl.Changed("namespace"):
				return usageErrorf("-n and -A exclude each other")
			case clusterMode && o.recursive:
				return usageErrorf("-R applies to -f directories")
			}
			if err := checkOutput(o.output, "text", "json", "yaml"); err != nil {
				return err
			}
			return a.runCheck(cmd.Context(), o, clusterMode)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "manifest file (YAML/JSON, multi-document), directory, or - for stdin; repeatable")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "descend into the subdirectories of -f directories")
	fs.StringArrayVar(&o.policies, "policy", nil, "IAM identity policy document FILE (JSON) of the principal; repeatable")
	fs.BoolVar(&o.allowEmpty, "allow-empty", false, "exit 0 when the inputs hold no EC2 Upstream")
	fs.BoolVar(&o.fromCluster, "from-cluster", false, "check the Upstreams in the cluster of the kubeconfig context")
	addOutputFlag(cmd, &o.output, "text", "json", "yaml")
	a.addKubeFlags(fs, &o.allNamespaces)
	return cmd
}

// runCheck reads the inputs, checks every EC2 Upstream and writes the verdicts.
func (a *app) runCheck(ctx context.Context, o checkOptions, clusterMode bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var in *inputs
	var err error
	if clusterMode {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		in, err = a.readCluster(cctx, o.allNamespaces)
		cancel()
	} else {
		defaultNS := "default"
		if ns := *a.kube.Namespace; ns != "" {
			defaultNS = ns
		}
		in, err = readInputs(o.files, o.recursive, defaultNS, a.stdin, a.stderr)
	}
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	iam, err := newOfflineIAM(ctx, o.policies)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if len(in.upstreams) == 0 && !o.allowEmpty {
		return usageErrorf("no EC2 Upstream found: %s (use --allow-empty if that is expected)", in.describeFound())
	}
	verdicts := checkUpstreams(ctx, in, iam)
	switch o.output {
	case "text":
		writeText(a.stdout, in, verdicts, iam, newStyle(a.stdout, a.getenv))
	default:
		for _, s := range in.skipped {
			fmt.Fprintf(a.stderr, "ec2guard check: %s: not an EC2 upstream, skipped\n", s)
		}
		if err := writeStructured(a.stdout, o.output, structuredVerdicts(verdicts)); err != nil {
			return usageErrorf("write output: %v", err)
		}
	}
	for _, v := range verdicts {
		if !v.allowed() {
			return exitWith(exitRejected)
		}
	}
	return nil
}

// ---- reading inputs ----

// location says where an object came from: a file and line, or the cluster.
type location struct {
	file string // empty for an object read from the cluster
	doc  int    // 1-based index among the file's non-empty documents
	item int    // 1-based index in a List's items, 0 if not in a list
	line int    // line of the object's first field
}

// short renders "file:line" (with the List item), or "cluster".
func (l location) short() string {
	if l.file == "" {
		return "cluster"
	}
	s := fmt.Sprintf("%s:%d", l.file, l.line)
	if l.item > 0 {
		s += fmt.Sprintf(" item %d", l.item)
	}
	return s
}

func (l location) String() string {
	if l.file == "" {
		return "cluster"
	}
	s := fmt.Sprintf("%s:%d: document %d", l.file, l.line, l.doc)
	if l.item > 0 {
		s += fmt.Sprintf(", item %d", l.item)
	}
	return s
}

// upstreamInput is one decoded EC2 Upstream with where it came from.
type upstreamInput struct {
	upstream *ec2.Upstream
	at       location
}

// inputs is everything read from the files or the cluster.
type inputs struct {
	upstreams []upstreamInput
	secrets   map[types.NamespacedName]*corev1.Secret
	skipped   []string // non-EC2 upstreams, as "ns/name (location)"
	found     map[string]int

	// fromCluster: a referenced secret that is not in secrets does not exist (an error, as the
	// webhook says), unless unreadable names why it could not be read.
	fromCluster bool
	where       string // the namespace read, or "all namespaces"
	unreadable  map[types.NamespacedName]string
}

func newInputs() *inputs {
	return &inputs{secrets: map[types.NamespacedName]*corev1.Secret{}, found: map[string]int{},
		unreadable: map[types.NamespacedName]string{}}
}

// describeFound says what the inputs held, e.g. "2 Secrets, 1 ConfigMap, 1 non-EC2 Upstream".
func (in *inputs) describeFound() string {
	if len(in.found) == 0 && in.fromCluster {
		return "there are no Upstreams in " + in.where
	}
	if len(in.found) == 0 {
		return "the inputs hold no Kubernetes objects"
	}
	kinds := make([]string, 0, len(in.found))
	for k := range in.found {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, plural(in.found[k], k))
	}
	return "found " + strings.Join(parts, ", ")
}

// readInputs reads every -f argument; notes about ignored documents and skipped directories go to
// notes. Objects without a namespace are put in defaultNS.
func readInputs(files []string, recursive bool, defaultNS string, stdin io.Reader, notes io.Writer) (*inputs, error) {
	in := newInputs()
	stdinUsed := false
	for _, f := range files {
		paths, err := expandPath(f, recursive, notes)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			var objs []ec2.ManifestObject
			if p == "-" {
				if stdinUsed {
					return nil, errors.New("-f - given more than once")
				}
				stdinUsed = true
				objs, err = ec2.ReadManifests("<stdin>", stdin)
			} else {
				objs, err = readManifestFile(p)
			}
			if err != nil {
				return nil, err
			}
			for i := range objs {
				if err := in.addObject(&objs[i], defaultNS, notes); err != nil {
					return nil, err
				}
			}
		}
	}
	return in, nil
}

func readManifestFile(p string) ([]ec2.ManifestObject, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	return ec2.ReadManifests(p, f)
}

// isManifestName reports whether a file in a directory is read: *.yaml, *.yml, *.json, as kubectl.
func isManifestName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// expandPath turns a directory into its manifest files, sorted. Without recursive, subdirectories
// are skipped with a note naming them; with it, they are walked (symbolic links to directories are
// not followed).
func expandPath(p string, recursive bool, notes io.Writer) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	if strings.Contains(p, "://") {
		return nil, fmt.Errorf("-f %s: URLs are not read; download the file first", p)
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var out, skipped []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read directory %s: %w", path, err)
		}
		if d.IsDir() {
			if path != p && !recursive {
				skipped = append(skipped, path)
				return filepath.SkipDir
			}
			return nil
		}
		if isManifestName(d.Name()) && (d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		fmt.Fprintf(notes, "note: %s: %s not read (use -R to descend): %s\n", p, plural(len(skipped), "subdirectory"), strings.Join(skipped, ", "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("directory %s has no *.yaml, *.yml or *.json files", p)
	}
	sort.Strings(out)
	return out, nil
}

// addObject files one object under Upstreams or Secrets, and counts its kind.
func (in *inputs) addObject(o *ec2.ManifestObject, defaultNS string, notes io.Writer) error {
	loc := location{file: o.File, doc: o.Doc, item: o.Item, line: o.Line}
	apiVersion, kind := o.APIVersion(), o.Kind()
	switch {
	case kind == "" || apiVersion == "":
		in.found["untyped object"]++
		fmt.Fprintf(notes, "note: %s: no apiVersion/kind, ignored\n", loc)
		return nil
	case apiVersion == "v1" && kind == "Secret":
		in.found["Secret"]++
		return in.addSecret(o.Object, loc, defaultNS, notes)
	}
	u, err := o.Upstream()
	switch {
	case errors.Is(err, ec2.ErrNotUpstream):
		in.found[kind]++
		fmt.Fprintf(notes, "note: %s: %s %s ignored (ec2guard checks Upstreams and Secrets)\n", loc, apiVersion, kind)
		return nil
	case errors.Is(err, ec2.ErrNotEC2):
		in.found["non-EC2 Upstream"]++
		in.skipped = append(in.skipped, fmt.Sprintf("%s (%s)", objectKey(o.Object, defaultNS), loc))
		return nil
	case err != nil:
		return err
	}
	if u.Namespace == "" {
		u.Namespace = defaultNS
		fmt.Fprintf(notes, "note: %s: Upstream %s has no namespace; assuming %q\n", loc, u.Name, defaultNS)
	}
	in.upstreams = append(in.upstreams, upstreamInput{upstream: u, at: loc})
	return nil
}

// objectKey renders an object's "namespace/name" for notes.
func objectKey(obj map[string]any, defaultNS string) string {
	md, _ := obj["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	if ns == "" {
		ns = defaultNS
	}
	if name == "" {
		name = "(unnamed)"
	}
	return ns + "/" + name
}

// addSecret converts a Secret manifest; a malformed one (e.g. data that is not base64) is an input error.
func (in *inputs) addSecret(obj map[string]any, loc location, defaultNS string, notes io.Writer) error {
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &s); err != nil {
		return fmt.Errorf("%s: Secret %s is malformed: %v", loc, objectKey(obj, defaultNS), err)
	}
	if s.Namespace == "" {
		s.Namespace = defaultNS
		fmt.Fprintf(notes, "note: %s: Secret %s has no namespace; assuming %q\n", loc, s.Name, defaultNS)
	}
	nn := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
	if _, dup := in.secrets[nn]; dup {
		fmt.Fprintf(notes, "note: %s: Secret %s given more than once; the last one is used\n", loc, nn)
	}
	in.secrets[nn] = &s
	return nil
}
