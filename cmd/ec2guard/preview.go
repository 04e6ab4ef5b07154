package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ec2guard/ec2guard/pkg/admission"
	"github.com/ec2guard/ec2guard/pkg/awsclients"
	"github.com/ec2guard/ec2guard/pkg/ec2"
	"github.com/ec2guard/ec2guard/pkg/ec2/ec2api"
	"github.com/ec2guard/ec2guard/pkg/policycheck"
	"github.com/ec2guard/ec2guard/pkg/policycheck/collect"
)

const previewLong = `Lists, right now, the EC2 instances an Upstream selects: id, private IP, port (from the port tag
when the Upstream has the ec2guard.io/port-tag annotation, else spec port) and state, with the tags that
matched. It also lists near misses: instances it does not select though they almost match — a tag key
that differs from a filter's only in case, a value that differs only in case or surrounding
whitespace — and instances that match but are not running. Then the IAM decision for
ec2:DescribeInstances with the source that decided it, and the Upstream's consistency class, computed
as the webhook computes them (--iam-sources as the webhook's flag).

Credentials are the Upstream's own: its secretRef's Secret from the -f inputs, else read from the
cluster with your kubeconfig (--context, --kubeconfig); or, with --use-local-credentials, the AWS
SDK's default chain of this machine (environment, ~/.aws, SSO). Secret values are never printed.

Exit codes: 0 listed, 1 the credentials may not list instances (IAM deny, or AWS refused them),
2 usage or input error.`

const previewExample = `  # With the Upstream's secret from the cluster of the current kubeconfig context
  ec2guard preview -f upstream.yaml

  # With a secret manifest given alongside, as JSON for a script
  ec2guard preview -f upstream.yaml -f secret.yaml -o json

  # With this machine's AWS credentials (AWS_PROFILE, ~/.aws, SSO) instead of the secret
  ec2guard preview -f upstream.yaml --use-local-credentials`

// previewTimeout bounds one preview.
const previewTimeout = 2 * time.Minute

// maxNearMisses bounds the near misses reported per Upstream.
const maxNearMisses = 100

type previewOptions struct {
	files       []string
	output      string
	localCreds  bool
	awsEndpoint string
	iamSources  []string
	allowEmpty  bool
	recursive   bool
	callTimeout time.Duration
}

func (a *app) previewCommand() *cobra.Command {
	var o previewOptions
	cmd := &cobra.Command{
		Use:     "preview -f FILENAME... [--use-local-credentials] [-o text|json|yaml]",
		Short:   "List the instances an Upstream would select now, and its near misses",
		Long:    previewLong,
		Example: previewExample,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unexpected argument %q (give files with -f)", args[0])
			}
			if len(o.files) == 0 {
				return usageErrorf("give the Upstream with -f FILENAME (see ec2guard preview --help)")
			}
			if err := checkOutput(o.output, "text", "json", "yaml"); err != nil {
				return err
			}
			if o.awsEndpoint != "" {
				if err := checkLoopbackEndpoint(o.awsEndpoint); err != nil {
					return usageErrorf("--aws-endpoint: %v", err)
				}
			}
			for _, s := range o.iamSources {
				if s != admission.SourceLocal && s != admission.SourceAWSSimulator && s != admission.SourceDryRun {
					return usageErrorf("--iam-sources: %q is not local, aws-simulator or dry-run", s)
				}
			}
			return a.runPreview(cmd.Context(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringSliceVarP(&o.files, "filename", "f", nil, "manifest file with the Upstream (and optionally its Secret), directory, or - for stdin; repeatable")
	fs.BoolVarP(&o.recursive, "recursive", "R", false, "descend into the subdirectories of -f directories")
	fs.BoolVar(&o.localCreds, "use-local-credentials", false, "use this machine's AWS SDK default credential chain instead of the Upstream's secret")
	fs.StringVar(&o.awsEndpoint, "aws-endpoint", awsclients.EndpointFromEnv(), "AWS endpoint of an emulator on this machine (tests, demos), loopback only; default $"+awsclients.EndpointEnv)
	fs.StringSliceVar(&o.iamSources, "iam-sources", []string{admission.SourceLocal}, "IAM decision sources, as the webhook's flag: local, aws-simulator, dry-run")
	fs.BoolVar(&o.allowEmpty, "allow-empty", false, "exit 0 when the inputs hold no EC2 Upstream")
	fs.DurationVar(&o.callTimeout, "timeout", previewTimeout, "bound on the whole preview")
	addOutputFlag(cmd, &o.output, "text", "json", "yaml")
	a.addKubeFlags(fs, nil)
	return cmd
}

// checkLoopbackEndpoint accepts only an http(s) URL of a loopback host: --aws-endpoint is for
// emulators, never a way to send credentials elsewhere.
func checkLoopbackEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	switch h := u.Hostname(); {
	case h == "localhost", strings.HasPrefix(h, "127."), h == "::1":
		return nil
	}
	return fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1, localhost)", s)
}

// The preview of one Upstream, as written by -o json/yaml.
type (
	previewOutput struct {
		Previews []upstreamPreview `json:"previews"`
	}
	upstreamPreview struct {
		outputOrigin
		Region      string            `json:"region"`
		Credentials string            `json:"credentials"`
		Filters     []string          `json:"filters"`
		Selected    []previewInstance `json:"selected"`
		NearMisses  []nearMiss        `json:"nearMisses"`
		IAM         previewIAM        `json:"iam"`
		Consistency string            `json:"consistency"`
		Problems    []string          `json:"problems,omitempty"`
		Notes       []string          `json:"notes,omitempty"`
	}
	previewInstance struct {
		ID          string            `json:"id"`
		PrivateIP   string            `json:"privateIp"`
		Port        uint32            `json:"port"`
		State       string            `json:"state"`
		MatchedTags map[string]string `json:"matchedTags"`
	}
	nearMiss struct {
		ID        string   `json:"id"`
		PrivateIP string   `json:"privateIp"`
		State     string   `json:"state"`
		Reasons   []string `json:"reasons"`
	}
	previewIAM struct {
		Principal string `json:"principal"`
		Decision  string `json:"decision"`
		Source    string `json:"source"`
	}
)

func (a *app) runPreview(ctx context.Context, o previewOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.callTimeout)
	defer cancel()
	defaultNS := "default"
	if ns := *a.kube.Namespace; ns != "" {
		defaultNS = ns
	}
	in, err := readInputs(o.files, o.recursive, defaultNS, a.stdin, a.stderr)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if len(in.upstreams) == 0 {
		if o.allowEmpty {
			return nil
		}
		return usageErrorf("no EC2 Upstream found: %s", in.describeFound())
	}
	factory, err := awsclients.NewFactory(awsclients.Options{
		Endpoint: o.awsEndpoint,
		Retry:    ec2api.RetryOptions{MaxAttempts: 3, MaxBackoff: time.Second},
	})
	if err != nil {
		return usageErrorf("AWS clients: %v", err)
	}
	collector, err := collect.New(collect.Options{})
	if err != nil {
		return usageErrorf("IAM policy collection: %v", err)
	}
	engine, err := policycheck.NewEngine(ctx)
	if err != nil {
		return usageErrorf("IAM engine: %v", err)
	}
	evaluator, err := admission.NewIAMEvaluator(&admission.FactoryAWS{Factory: factory, Collector: collector}, engine,
		admission.IAMOptions{Sources: o.iamSources, Deadline: 30 * time.Second}, nil, logr.Discard())
	if err != nil {
		return usageErrorf("IAM evaluator: %v", err)
	}
	out := previewOutput{Previews: []upstreamPreview{}}
	code := exitOK
	for _, ui := range in.upstreams {
		p, c, err := a.previewOne(ctx, o, in, ui, factory, evaluator)
		if err != nil {
			return err
		}
		code = max(code, c)
		out.Previews = append(out.Previews, p)
	}
	if o.output == "text" {
		writePreviewText(a.stdout, out, newStyle(a.stdout, a.getenv))
	} else if err := writeStructured(a.stdout, o.output, out); err != nil {
		return usageErrorf("write output: %v", err)
	}
	if code != exitOK {
		return exitWith(code)
	}
	return nil
}

// staticSecrets is an admission.SecretReader over secrets already read.
type staticSecrets map[types.NamespacedName]*corev1.Secret

func (s staticSecrets) Secret(_ context.Context, nn types.NamespacedName) (*corev1.Secret, error) {
	return s[nn], nil
}

// previewOne previews one Upstream; the returned code is exitRejected when its credentials may not
// list instances.
func (a *app) previewOne(ctx context.Context, o previewOptions, in *inputs, ui upstreamInput,
	factory *awsclients.Factory, evaluator *admission.IAMEvaluator) (upstreamPreview, int, error) {
	u := ui.upstream
	p := upstreamPreview{outputOrigin: ui.origin(), Region: u.Spec.Region,
		Filters: []string{}, Selected: []previewInstance{}, NearMisses: []nearMiss{}}
	for _, f := range u.Spec.Filters {
		p.Filters = append(p.Filters, f.String())
	}
	// The spec must be usable: the same rules as check.
	for _, f := range u.Check() {
		if f.Severity == ec2.SeverityError {
			p.Problems = append(p.Problems, f.String())
		}
	}
	if len(p.Problems) > 0 {
		return p, 0, usageErrorf("%s (%s): the Upstream is rejected, fix it first (ec2guard check):\n  %s", p.Upstream, ui.at.short(), strings.Join(p.Problems, "\n  "))
	}
	req := awsclients.Request{Region: u.Spec.Region, RoleARN: u.Spec.RoleARN}
	secrets := staticSecrets{}
	nn, hasSecret := u.SecretName()
	switch {
	case o.localCreds:
		p.Credentials = "this machine's AWS SDK default chain (--use-local-credentials)"
		if hasSecret {
			p.Notes = append(p.Notes, fmt.Sprintf("secretRef %s is not used (--use-local-credentials)", nn))
			u = withoutSecretRef(u)
		}
	case !hasSecret:
		return p, 0, usageErrorf("%s: no secretRef, so Gloo would use its pod's own AWS identity; pass --use-local-credentials to preview with this machine's", p.Upstream)
	default:
		s, where, err := a.findSecret(ctx, in, nn)
		if err != nil {
			return p, 0, &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", p.Upstream, err)}
		}
		creds, fs := u.CheckSecret(s, ec2.SeverityError)
		if fs.HasErrors() {
			var msgs []string
			for _, f := range fs {
				msgs = append(msgs, f.String())
			}
			return p, 0, usageErrorf("%s: secret %s is not usable:\n  %s", p.Upstream, nn, strings.Join(msgs, "\n  "))
		}
		secrets[nn] = s
		req.Secret = awsclients.NewSecretVersion(s, creds)
		p.Credentials = fmt.Sprintf("secret %s (%s, access key %s)", nn, where, creds.MaskedAccessKeyID())
	}

	// IAM decision, source and consistency class, as the webhook computes its annotations.
	// The access gate is open: the user read the Secret with their own kubeconfig (or passed
	// --use-local-credentials, which are theirs, not a pod's).
	rv := &admission.Reviewer{Secrets: secrets, IAM: evaluator, Access: readerMayGet{}, PodIdentityNamespaces: ec2.NamespaceList{"*"}}
	ann := rv.AnnotationsFor(ctx, authenticationv1.UserInfo{Username: "ec2guard-preview"}, u)
	p.IAM = previewIAM{Principal: ann[admission.AnnotationPrincipal], Decision: ann[admission.AnnotationIAMDecision], Source: ann[admission.AnnotationIAMSource]}
	p.Consistency = ann[admission.AnnotationConsistency]

	clients, err := factory.Get(ctx, req)
	if err != nil {
		return p, 0, usageErrorf("%s: AWS clients: %v", p.Upstream, err)
	}
	// One listing of every running instance, matched in memory with the discoverer's own matcher:
	// what preview says is selected is what the discoverer publishes.
	matcher, err := u.Spec.Matcher()
	if err != nil {
		return p, 0, usageErrorf("%s: filters: %v", p.Upstream, err)
	}
	running, _, err := ec2api.ListRunningInstances(ctx, clients.EC2, nil)
	if err != nil {
		p.Problems = append(p.Problems, fmt.Sprintf("listing the running instances failed: %v", err))
		return p, exitRejected, nil
	}
	var selected []ec2api.Instance
	for _, inst := range running {
		if matcher.Match(inst.Tags) {
			selected = append(selected, inst)
		}
	}
	portTag, hasPortTag := u.PortTag()
	chosen := map[string]bool{}
	for _, inst := range selected {
		chosen[inst.ID] = true
		pi := previewInstance{ID: inst.ID, PrivateIP: inst.PrivateIPv4, Port: u.Spec.EffectivePort(), State: inst.State, MatchedTags: matchedTags(u.Spec.Filters, inst.Tags)}
		if hasPortTag {
			if v, ok := inst.Tags[portTag]; ok {
				if port, err := ec2.ParsePortTagValue(v); err == nil {
					pi.Port = port
				} else {
					p.Notes = append(p.Notes, fmt.Sprintf("%s: %v; spec port %d is used", inst.ID, err, pi.Port))
				}
			}
		}
		p.Selected = append(p.Selected, pi)
	}
	sort.Slice(p.Selected, func(i, j int) bool { return p.Selected[i].ID < p.Selected[j].ID })

	// Near misses: running instances that almost match, then matching instances that are not running.
	if !matcher.SelectsEverything() {
		for _, inst := range running {
			if chosen[inst.ID] {
				continue
			}
			if reasons, near := nearMissReasons(u.Spec.Filters, inst.Tags); near {
				if matcher.MatchLowercasedKeys(inst.Tags) {
					reasons = append(reasons, "Gloo's own EC2 plugin, which lowercases tag keys, would select it (see the case-sensitivity result of the consistency report)")
				}
				p.NearMisses = append(p.NearMisses, nearMiss{ID: inst.ID, PrivateIP: inst.PrivateIPv4, State: inst.State, Reasons: reasons})
			}
		}
	}
	stopped, err := listNotRunning(ctx, clients.EC2, nil)
	if err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("instances that are not running not listed: %v", err))
	}
	for _, inst := range stopped {
		if matcher.Match(inst.Tags) {
			p.NearMisses = append(p.NearMisses, nearMiss{ID: inst.ID, PrivateIP: inst.PrivateIPv4, State: inst.State,
				Reasons: []string{fmt.Sprintf("instance is %s, not running", inst.State)}})
		}
	}
	sort.Slice(p.NearMisses, func(i, j int) bool { return p.NearMisses[i].ID < p.NearMisses[j].ID })
	if len(p.NearMisses) > maxNearMisses {
		p.Notes = append(p.Notes, fmt.Sprintf("%d near misses; the first %d are listed", len(p.NearMisses), maxNearMisses))
		p.NearMisses = p.NearMisses[:maxNearMisses]
	}
	code := exitOK
	if p.IAM.Decision == admission.DecisionImplicitDeny || p.IAM.Decision == admission.DecisionExplicitDeny {
		code = exitRejected
	}
	return p, code, nil
}

// withoutSecretRef is a copy of u that uses the default chain.
func withoutSecretRef(u *ec2.Upstream) *ec2.Upstream {
	c := *u
	c.Spec.SecretRef = nil
	return &c
}

// findSecret returns the Secret from the -f inputs, else from the cluster with the user's kubeconfig.
func (a *app) findSecret(ctx context.Context, in *inputs, nn types.NamespacedName) (*corev1.Secret, string, error) {
	if s, ok := in.secrets[nn]; ok {
		return s, "from the inputs", nil
	}
	kc, err := a.newKube()
	if err != nil {
		return nil, "", fmt.Errorf("secret %s is not among the inputs and the cluster cannot be read: %w (give its manifest with -f, or --use-local-credentials)", nn, err)
	}
	s, err := kc.CoreV1().Secrets(nn.Namespace).Get(ctx, nn.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, "", fmt.Errorf("secret %s does not exist in the cluster", nn)
	case apierrors.IsForbidden(err):
		return nil, "", fmt.Errorf("your kubeconfig user may not get secret %s", nn)
	case err != nil:
		return nil, "", fmt.Errorf("get secret %s: %w", nn, err)
	}
	return s, "from the cluster", nil
}

// matchedTags returns the instance's tags that satisfy the filters.
func matchedTags(filters []ec2.Filter, tags map[string]string) map[string]string {
	out := map[string]string{}
	for _, f := range filters {
		k := f.TagKey()
		if v, ok := tags[k]; ok {
			out[k] = v
		}
	}
	return out
}

// nearMissReasons says why an instance the filters do not select almost matches: every filter it
// fails, it fails only by the case of a tag key, or by the case or surrounding whitespace of a
// value. near is false when some filter fails otherwise (or none fails).
func nearMissReasons(filters []ec2.Filter, tags map[string]string) (reasons []string, near bool) {
	for _, f := range filters {
		want := f.TagKey()
		if !f.IsKV() {
			if _, ok := tags[want]; ok {
				continue
			}
			k, ok := keyDifferingInCase(tags, want)
			if !ok {
				return nil, false
			}
			reasons = append(reasons, fmt.Sprintf("tag key %q differs from filter key %q only in case", k, want))
			continue
		}
		wantV := f.KVPair.Value
		if v, ok := tags[want]; ok {
			if v == wantV {
				continue
			}
			if why, ok := valueNearMiss(v, wantV); ok {
				reasons = append(reasons, fmt.Sprintf("tag %s: value %q %s %q", want, v, why, wantV))
				continue
			}
			return nil, false
		}
		k, ok := keyDifferingInCase(tags, want)
		if !ok {
			return nil, false
		}
		v := tags[k]
		reason := fmt.Sprintf("tag key %q differs from filter key %q only in case", k, want)
		if v != wantV {
			why, ok := valueNearMiss(v, wantV)
			if !ok {
				return nil, false
			}
			reason += fmt.Sprintf(", and its value %q %s %q", v, why, wantV)
		}
		reasons = append(reasons, reason)
	}
	return reasons, len(reasons) > 0
}

// keyDifferingInCase finds a tag key equal to want but for case (the smallest, for stable output).
func keyDifferingInCase(tags map[string]string, want string) (string, bool) {
	var found []string
	for k := range tags {
		if k != want && strings.EqualFold(k, want) {
			found = append(found, k)
		}
	}
	if len(found) == 0 {
		return "", false
	}
	sort.Strings(found)
	return found[0], true
}

// valueNearMiss reports whether v differs from want only in case or surrounding whitespace.
func valueNearMiss(v, want string) (string, bool) {
	tv, tw := strings.TrimSpace(v), strings.TrimSpace(want)
	switch {
	case tv == tw:
		return "differs only in surrounding whitespace from", true
	case strings.EqualFold(v, want):
		return "differs only in case from", true
	case strings.EqualFold(tv, tw):
		return "differs only in case and surrounding whitespace from", true
	}
	return "", false
}

// listNotRunning lists the instances the EC2 filters select that are pending, stopping or stopped.
func listNotRunning(ctx context.Context, client ec2api.Client, filters []ec2types.Filter) ([]ec2api.Instance, error) {
	fs := []ec2types.Filter{{Name: aws.String(ec2api.StateFilterName), Values: []string{"pending", "stopping", "stopped"}}}
	for _, f := range filters {
		if aws.ToString(f.Name) != ec2api.StateFilterName {
			fs = append(fs, f)
		}
	}
	pager := awsec2.NewDescribeInstancesPaginator(client, &awsec2.DescribeInstancesInput{Filters: fs},
		func(o *awsec2.DescribeInstancesPaginatorOptions) {
			o.Limit = ec2api.PageSize
			o.StopOnDuplicateToken = true
		})
	var out []ec2api.Instance
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("ec2:DescribeInstances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				i := ec2api.Instance{ID: aws.ToString(inst.InstanceId), PrivateIPv4: aws.ToString(inst.PrivateIpAddress), Tags: map[string]string{}}
				if inst.State != nil {
					i.State = string(inst.State.Name)
				}
				if i.State == string(ec2types.InstanceStateNameRunning) {
					continue
				}
				for _, t := range inst.Tags {
					i.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
				out = append(out, i)
			}
		}
		if len(out) > 10*maxNearMisses {
			break
		}
	}
	return out, nil
}

// writePreviewText prints each preview: selected instances as a table, near misses with reasons,
// then IAM and consistency.
func writePreviewText(w io.Writer, out previewOutput, st style) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	for i, p := range out.Previews {
		if i > 0 {
			fmt.Fprintln(bw)
		}
		where := ""
		if p.File != "" {
			where = fmt.Sprintf(" (%s:%d)", p.File, p.Line)
		}
		fmt.Fprintf(bw, "%s%s\n", st.bold(p.Upstream), st.dim(where))
		filters := strings.Join(p.Filters, ", ")
		if filters == "" {
			filters = "none (every instance)"
		}
		fmt.Fprintf(bw, "  region %s; filters: %s\n  credentials: %s\n", p.Region, filters, p.Credentials)
		fmt.Fprintf(bw, "  IAM: %s (source %s, principal %s); consistency: %s\n", p.IAM.Decision, p.IAM.Source, p.IAM.Principal, p.Consistency)
		fmt.Fprintf(bw, "  %s:\n", st.green(plural(len(p.Selected), "selected instance")))
		for _, s := range p.Selected {
			fmt.Fprintf(bw, "    %-20s %-15s port %-5d %-8s %s\n", s.ID, s.PrivateIP, s.Port, s.State, labels.Set(s.MatchedTags).String())
		}
		fmt.Fprintf(bw, "  %s:\n", st.yellow(plural(len(p.NearMisses), "near miss")))
		for _, n := range p.NearMisses {
			fmt.Fprintf(bw, "    %-20s %-15s %-8s %s\n", n.ID, n.PrivateIP, n.State, strings.Join(n.Reasons, "; "))
		}
		for _, pr := range p.Problems {
			fmt.Fprintf(bw, "  %s %s\n", st.red("error"), pr)
		}
		for _, n := range p.Notes {
			fmt.Fprintf(bw, "  note: %s\n", n)
		}
	}
}

// readerMayGet answers the access gate for a Secret the CLI's user has already read with their own
// kubeconfig: they may get it.
type readerMayGet struct{}

func (readerMayGet) CanGetSecret(context.Context, authenticationv1.UserInfo, types.NamespacedName) (bool, string, error) {
	return true, "read with the user's own kubeconfig", nil
}
