// Command imagebuild builds ec2guard's OCI images without a container engine (`make images`) and
// publishes them with the Helm chart (`make release`). docs/install.md describes both.
//
//	imagebuild build   --out bin/images --version V --commit SHA --created RFC3339
//	imagebuild release --images bin/images --registry HOST/PATH --version V --chart charts/ec2guard --helm bin/helm [--plain-http]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ec2guard/ec2guard/internal/imagebuild"
)

const usage = `usage:
  imagebuild build   --out DIR --version V --commit SHA --created RFC3339 [--licenses SPDX]
  imagebuild release --images DIR --registry HOST/PATH --version V --chart DIR --helm PATH [--plain-http]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "build":
		err = build(ctx, args[1:], stdout, stderr)
	case "release":
		err = release(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "imagebuild: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "imagebuild:", err)
		return 1
	}
	return 0
}

func build(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagebuild build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := imagebuild.BuildOptions{ModuleRoot: ".", Log: stdout}
	var created string
	fs.StringVar(&o.OutDir, "out", "bin/images", "directory of the OCI layouts (one per image)")
	fs.StringVar(&o.Version, "version", "", "version: --version output, label and tag")
	fs.StringVar(&o.Commit, "commit", "unknown", "git commit")
	fs.StringVar(&created, "created", "", "commit time (RFC 3339): build date and every timestamp in the images")
	fs.StringVar(&o.Licenses, "licenses", imagebuild.DefaultLicenses, "org.opencontainers.image.licenses (SPDX expression)")
	fs.StringVar(&o.ModuleRoot, "module", ".", "directory of go.mod")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return fmt.Errorf("--created %q: want the commit time in RFC 3339 (git log -1 --format=%%cI): %w", created, err)
	}
	o.Created = t
	_, err = imagebuild.Build(ctx, o)
	return err
}

func release(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagebuild release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := imagebuild.ReleaseOptions{Log: stdout, Images: imagebuild.Images}
	fs.StringVar(&o.ImagesDir, "images", "bin/images", "directory of the OCI layouts `imagebuild build` wrote")
	fs.StringVar(&o.Registry, "registry", "", "host[:port]/path to push to")
	fs.StringVar(&o.Version, "version", "", "release version x.y.z (the images must have been built with it)")
	fs.StringVar(&o.Chart, "chart", "charts/ec2guard", "chart directory")
	fs.StringVar(&o.Helm, "helm", "bin/helm", "helm binary")
	fs.BoolVar(&o.PlainHTTP, "plain-http", false, "the registry speaks plain HTTP (a local test registry)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := imagebuild.Release(ctx, o)
	if err != nil {
		return err
	}
	for _, img := range o.Images {
		fmt.Fprintf(stdout, "%s\t%s\n", img.Name, p.Images[img.Name])
	}
	fmt.Fprintf(stdout, "chart\t%s --version %s\n", p.Chart, p.ChartVersion)
	return nil
}
