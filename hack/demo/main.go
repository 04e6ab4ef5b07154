// Command demo is `make demo`: it runs ec2guard's tutorial against the real product (package
// test/demo) and leaves nothing running, even when interrupted. hack/demo.sh prepares the cached
// parts (kube-apiserver, etcd, kubectl, moto, helm) and runs it from the repository root.
//
// Usage: demo [-interval 5s] [-logs .cache/demo] [-bin DIR] [-pause]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ec2guard/ec2guard/test/demo"
	"github.com/ec2guard/ec2guard/test/harness/binproc"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
)

func main() {
	os.Exit(run())
}

func run() int {
	began := startTime()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	interval := fs.Duration("interval", demo.DefaultInterval, "the discoverer's refresh interval")
	logs := fs.String("logs", ".cache/demo", "directory for the logs, manifests and kubeconfig (emptied first)")
	pause := fs.Bool("pause", false, "after the walk, keep everything running until Ctrl-C (to explore with kubectl)")
	bin := fs.String("bin", "", "directory of the webhook, discoverer and ec2guard binaries (default: bin/ of the repository)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	root, err := k8senv.RepoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v (run it from the repository)\n", err)
		return 2
	}
	logDir, err := filepath.Abs(*logs)
	if err == nil {
		err = resetDir(logDir)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: log directory: %v\n", err)
		return 2
	}
	harnessLog, err := os.Create(filepath.Join(logDir, "harness.log"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 2
	}
	defer harnessLog.Close()
	k8senv.LogTo(harnessLog)

	// The first SIGINT/SIGTERM ends the walk; the cleanup then stops everything. Later signals
	// only say that the cleanup is running: leaving now would leave processes behind.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for sig := range sigs {
			if n == 0 {
				fmt.Fprintf(os.Stderr, "\ndemo: %v: stopping everything the demo started...\n", sig)
				cancel()
			} else {
				fmt.Fprintln(os.Stderr, "demo: still stopping the processes; they are in process groups of their own")
			}
			n++
		}
	}()

	tb := newSessionTB(logDir, harnessLog)
	var res *demo.Result
	runErr := tb.do(func() error {
		var err error
		res, err = demo.Run(ctx, tb, demo.Options{Root: root, BinDir: *bin, LogDir: logDir, Out: os.Stdout, Interval: *interval})
		if err == nil && *pause {
			fmt.Printf("\ndemo: everything keeps running; in another terminal:\n  export KUBECONFIG=%s\n  kubectl get upstreams,endpointslices -A\nPress Ctrl-C to stop it.\n",
				filepath.Join(logDir, "kubeconfig"))
			<-ctx.Done()
		}
		return err
	})
	if runErr != nil {
		tb.Errorf("%v", runErr)
	}
	tb.cleanup()

	left := 0
	if res != nil {
		for _, pid := range res.Processes {
			if binproc.Alive(pid) {
				fmt.Fprintf(os.Stderr, "demo: process %d (%s) is still running\n", pid, binproc.CommandLine(pid))
				left++
			}
		}
	}
	rel := logDir
	if r, err := filepath.Rel(root, logDir); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	elapsed := time.Since(began).Round(100 * time.Millisecond)
	fmt.Println()
	if tb.Failed() || left > 0 {
		fmt.Fprintf(os.Stderr, "demo: FAILED after %s (logs: %s/, messages: %s/harness.log)\n", elapsed, rel, rel)
		return 1
	}
	fmt.Printf("demo: every step gave the expected outcome; everything it started is stopped (%d processes). %s in total; logs in %s/\n",
		len(res.Processes), elapsed, rel)
	return 0
}

// startTime is when `make demo` started (hack/demo.sh exports EC2GUARD_DEMO_STARTED, nanoseconds
// since the epoch), so the total printed includes preparing the parts; else now.
func startTime() time.Time {
	if ns, err := strconv.ParseInt(os.Getenv("EC2GUARD_DEMO_STARTED"), 10, 64); err == nil && ns > 0 {
		if t := time.Unix(0, ns); time.Since(t) >= 0 && time.Since(t) < 24*time.Hour {
			return t
		}
	}
	return time.Now()
}

// resetDir empties dir (it holds only the previous run's logs) and creates it.
func resetDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("emptying %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
