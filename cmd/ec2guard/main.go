// Command ec2guard is the CLI: `check` gives the webhook's verdict for manifests, policy files or the
// Upstreams of a cluster, `preview` lists the instances an Upstream would select now, `simulate` runs
// the IAM engine, `report` renders consistency reports. Flags follow kubectl's conventions
// (docs/cli.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ec2guard/ec2guard/internal/kubeconfig"
	"github.com/ec2guard/ec2guard/internal/version"
)

// Exit codes of every command.
const (
	exitOK       = 0
	exitRejected = 1
	exitUsage    = 2
)

func main() {
	// Ctrl-C or SIGTERM cancels the context every cluster and AWS call runs under.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := newApp(os.Stdin, os.Stdout, os.Stderr).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newApp(stdin, stdout, stderr).run(context.Background(), args)
}

// app is one invocation: its streams, its cluster flags and the clients built from them.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// kube holds --kubeconfig, --context, -n/--namespace, --cluster, --user, --as, --as-group.
	kube *genericclioptions.ConfigFlags

	// newDynamic and newKube build the cluster clients from kube (replaced in unit tests).
	newDynamic func() (dynamic.Interface, error)
	newKube    func() (kubernetes.Interface, error)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, kube: newKubeFlags()}
	a.newDynamic = func() (dynamic.Interface, error) {
		cfg, err := a.restConfig()
		if err != nil {
			return nil, err
		}
		c, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
		return c, nil
	}
	a.newKube = func() (kubernetes.Interface, error) {
		cfg, err := a.restConfig()
		if err != nil {
			return nil, err
		}
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client: %w", err)
		}
		return c, nil
	}
	return a
}

// newKubeFlags keeps kubectl's flags for choosing a cluster, a user and a namespace, and drops the
// rest (server, token, certificates: those belong in the kubeconfig).
func newKubeFlags() *genericclioptions.ConfigFlags {
	f := genericclioptions.NewConfigFlags(true)
	f.CacheDir, f.APIServer, f.TLSServerName, f.Insecure = nil, nil, nil, nil
	f.CertFile, f.KeyFile, f.CAFile, f.BearerToken = nil, nil, nil, nil
	f.ImpersonateUID, f.ImpersonateUserExtra, f.Username, f.Password = nil, nil, nil, nil
	f.Timeout, f.DisableCompression, f.ProxyURL = nil, nil, nil
	return f
}

// restConfig is the kubeconfig's configuration (with --context etc.) and ec2guard's client rate limits.
func (a *app) restConfig() (*rest.Config, error) {
	cfg, err := a.kube.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = kubeconfig.DefaultQPS, kubeconfig.DefaultBurst
	cfg.UserAgent = "ec2guard/" + version.Get().Version
	return cfg, nil
}

// namespace is -n, else the kubeconfig context's namespace, else "default".
func (a *app) namespace() (string, error) {
	ns, _, err := a.kube.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	return ns, nil
}

// exitError ends a command with a code; its message (if any) has not been printed yet.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// usageErrorf is a usage or input error (exit 2).
func usageErrorf(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

// exitWith ends the command with code after its output is written.
func exitWith(code int) error { return &exitError{code: code} }

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(a.stderr, "%s: %v\n", cmd.CommandPath(), ee.err)
		}
		return ee.code
	}
	// Cobra's own errors: unknown command or flag, wrong arguments.
	fmt.Fprintf(a.stderr, "%s: %v\nSee '%s --help'.\n", cmd.CommandPath(), err, cmd.CommandPath())
	return exitUsage
}

const rootLong = `ec2guard checks Gloo EC2 Upstreams before they fail silently.

Exit codes of every command: 0 accepted, 1 rejected, 2 usage or input error.
Problem codes (EC2Gxxx): docs/codes.md. The CLI: docs/cli.md.`

const rootExample = `  # The webhook's verdict for manifests, offline
  ec2guard check -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml

  # The same for the Upstreams already in the current kubeconfig context's namespace
  ec2guard check --from-cluster

  # The instances an Upstream would select right now
  ec2guard preview -f upstream.yaml`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "ec2guard",
		Short:         "Checks Gloo EC2 Upstreams before they fail silently",
		Long:          rootLong,
		Example:       rootExample,
		Version:       version.Get().Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(a.stderr)
			_ = cmd.Usage()
			return exitWith(exitUsage)
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate(version.Get().String() + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(a.checkCommand(), a.previewCommand(), a.simulateCommand(), a.reportCommand(),
		a.selftestCommand(), a.versionCommand(), a.completionCommand())
	return root
}

// addKubeFlags adds kubectl's cluster flags (--kubeconfig, --context, -n, ...) and -A to a command.
func (a *app) addKubeFlags(fs *pflag.FlagSet, allNamespaces *bool) {
	a.kube.AddFlags(fs)
	if allNamespaces != nil {
		fs.BoolVarP(allNamespaces, "all-namespaces", "A", false, "all namespaces (instead of -n or the kubeconfig context's namespace)")
	}
}

// addOutputFlag adds -o/--output with the allowed formats (the first is the default), completed by
// the shell completion scripts.
func addOutputFlag(cmd *cobra.Command, p *string, formats ...string) {
	cmd.Flags().StringVarP(p, "output", "o", formats[0], "output format: "+strings.Join(formats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput returns a usage error when o is not among formats.
func checkOutput(o string, formats ...string) error {
	for _, f := range formats {
		if o == f {
			return nil
		}
	}
	return usageErrorf("-o must be one of %s, not %q", strings.Join(formats, ", "), o)
}

// ---- version ----

const versionExample = `  ec2guard version
  ec2guard version -o json
  ec2guard --version`

func (a *app) versionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit, build date and Go version",
		Example: versionExample,
		Args:    cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := checkOutput(output, "text", "json", "yaml"); err != nil {
				return err
			}
			info := version.Get()
			if output == "text" {
				fmt.Fprintln(a.stdout, info.String())
				return nil
			}
			return writeStructured(a.stdout, output, info)
		},
	}
	addOutputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}

// ---- completion ----

const completionExample = `  # bash, this shell only
  source <(ec2guard completion bash)
  # zsh, every shell
  ec2guard completion zsh > "${fpath[1]}/_ec2guard"
  # fish
  ec2guard completion fish > ~/.config/fish/completions/ec2guard.fish
  # PowerShell
  ec2guard completion powershell | Out-String | Invoke-Expression`

func (a *app) completionCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish|powershell",
		Short:     "Print a shell completion script",
		Example:   completionExample,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			var err error
			switch args[0] {
			case "bash":
				err = root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				err = root.GenZshCompletion(a.stdout)
			case "fish":
				err = root.GenFishCompletion(a.stdout, true)
			case "powershell":
				err = root.GenPowerShellCompletionWithDesc(a.stdout)
			}
			if err != nil {
				return usageErrorf("write the completion script: %v", err)
			}
			return nil
		},
	}
}
