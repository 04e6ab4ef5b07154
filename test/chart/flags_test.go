package chart_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ec2guard/ec2guard/test/harness/binproc"
)

const (
	runTimeout = 60 * time.Second
)

// commandEnv is a minimal environment for the binaries: no kubeconfig, no AWS endpoint or
// credentials from the caller, no instance metadata.
func commandEnv(t *testing.T) []string {
	t.Helper()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// parseOutcome runs bin with args and a kubeconfig that does not exist. Both binaries parse and
// validate every flag first and only then read the kubeconfig, so an error naming that file
// means the command line was accepted as a whole.
func parseOutcome(t *testing.T, bin string, args []string) (accepted bool, output string) {
	t.Helper()
	missing := filepath.Join(t.TempDir(), "no-such-kubeconfig")
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(slices.Clone(args), "--kubeconfig="+missing)...)
	cmd.Env = commandEnv(t)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("%s: want a non-zero exit (the kubeconfig does not exist), got %v\n%s", filepath.Base(bin), err, out.String())
	}
	return strings.Contains(out.String(), "--kubeconfig "+missing), out.String()
}

// TestRenderedArgsParse runs the real cmd/webhook and cmd/discoverer flag parsing (and their
// cross-flag checks) over the command lines the chart renders for every value set. A renamed or
// removed flag, or a value the binary rejects, fails here.
func TestRenderedArgsParse(t *testing.T) {
	h := newHelm(t)
	bins := map[string]string{"webhook": binproc.Build(t, "webhook"), "discoverer": binproc.Build(t, "discoverer")}

	// The controls show the outcome tells a rejected command line from an accepted one.
	t.Run("control", func(t *testing.T) {
		for name, bin := range bins {
			if ok, out := parseOutcome(t, bin, []string{"--no-such-flag=1"}); ok || !strings.Contains(out, "flag provided but not defined: -no-such-flag") {
				t.Errorf("%s accepted an unknown flag (or said something else):\n%s", name, out)
			}
			if ok, out := parseOutcome(t, bin, []string{"--log-format=yaml"}); ok || !strings.Contains(out, "--log-format") {
				t.Errorf("%s accepted --log-format=yaml (or said something else):\n%s", name, out)
			}
			if ok, out := parseOutcome(t, bin, nil); !ok {
				t.Errorf("%s rejected an empty command line:\n%s", name, out)
			}
		}
	})

	for _, vs := range valueSets(t) {
		t.Run(vs.name, func(t *testing.T) {
			m := h.render(t, vs.values)
			_, wc := webhookDeployment(t, m)
			if ok, out := parseOutcome(t, bins["webhook"], wc.Args); !ok {
				t.Errorf("cmd/webhook rejects the rendered args %q:\n%s", wc.Args, out)
			}
			if _, dc := discovererDeployment(t, m); dc != nil {
				if ok, out := parseOutcome(t, bins["discoverer"], dc.Args); !ok {
					t.Errorf("cmd/discoverer rejects the rendered args %q:\n%s", dc.Args, out)
				}
			}
		})
	}
}

// chartChoices are flags whose chart default deliberately differs from the binary's.
var chartChoices = map[string][]string{
	// The serving certificate Secret is mounted there.
	"webhook": {"cert-dir"},
	// Other ports than the webhook's, so both fit in one pod (sidecar mode); the Lease is named
	// after the release and lives in its namespace.
	"discoverer": {"metrics-bind-address", "health-probe-bind-address", "leader-election-namespace", "leader-election-id"},
}

// TestChartDefaultsMatchBinaries: with default values the chart passes the binaries' own defaults
// (from their -h output), except the flags in chartChoices. A default changed in the code and not
// in values.yaml fails here.
func TestChartDefaultsMatchBinaries(t *testing.T) {
	h := newHelm(t)
	m := h.render(t, nil)
	_, wc := webhookDeployment(t, m)
	_, dc := discovererDeployment(t, m)
	for name, args := range map[string][]string{"webhook": wc.Args, "discoverer": dc.Args} {
		t.Run(name, func(t *testing.T) {
			defaults := helpDefaults(t, binproc.Build(t, name))
			for flag, value := range flagMap(args) {
				if slices.Contains(chartChoices[name], flag) {
					continue
				}
				def, ok := defaults[flag]
				if !ok {
					t.Errorf("--%s: not in %s -h", flag, name)
					continue
				}
				if !def.known {
					t.Logf("--%s: %s -h shows no default for a flag of type %q; not compared", flag, name, def.typ)
					continue
				}
				if !sameValue(def.typ, def.value, value) {
					t.Errorf("--%s: the chart passes %q, the binary's default is %q (change values.yaml, or list it in chartChoices with the reason)", flag, value, def.value)
				}
			}
		})
	}
}

// flagDefault is one flag of a Go flag.FlagSet's -h output.
type flagDefault struct {
	typ   string // "" for bool flags, else what PrintDefaults names (string, duration, int, float, value)
	value string
	known bool // false for a Value-typed flag without "(default ...)": its zero value is not known
}

var (
	flagLine    = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	defaultText = regexp.MustCompile(`\(default (.+)\)$`)
)

// helpDefaults runs bin -h and reads every flag's default as the flag package prints it.
func helpDefaults(t *testing.T, bin string) map[string]flagDefault {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-h")
	cmd.Env = commandEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -h: %v\n%s", bin, err, out)
	}
	defaults := map[string]flagDefault{}
	var name string
	var usage strings.Builder
	flush := func() {
		if name == "" {
			return
		}
		d := defaults[name]
		if m := defaultText.FindStringSubmatch(strings.TrimSpace(usage.String())); m != nil {
			d.value, d.known = m[1], true
			if u, err := strconv.Unquote(d.value); err == nil {
				d.value = u
			}
		} else {
			// Not printed: the zero value of its type.
			d.value, d.known = map[string]string{"": "false", "string": "", "duration": "0s", "int": "0", "float": "0"}[d.typ], d.typ != "value"
		}
		defaults[name] = d
		usage.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flush()
			name = m[1]
			defaults[name] = flagDefault{typ: m[2]}
			continue
		}
		if strings.HasPrefix(line, "    \t") {
			usage.WriteString(" " + strings.TrimSpace(line))
		}
	}
	flush()
	if len(defaults) < 10 {
		t.Fatalf("%s -h: found only %d flags in:\n%s", bin, len(defaults), out)
	}
	return defaults
}

// sameValue compares a flag default with a chart value by the flag's type.
func sameValue(typ, def, chart string) bool {
	switch typ {
	case "duration":
		a, errA := time.ParseDuration(def)
		b, errB := time.ParseDuration(chart)
		return errA == nil && errB == nil && a == b
	case "float", "int":
		a, errA := strconv.ParseFloat(def, 64)
		b, errB := strconv.ParseFloat(chart, 64)
		return errA == nil && errB == nil && a == b
	default:
		return def == chart
	}
}
