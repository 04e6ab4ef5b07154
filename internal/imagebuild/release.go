package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// semverPattern is a release version: SemVer 2 without build metadata (a '+' is not allowed in
// an image tag), optionally with a leading v.
var semverPattern = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// ChartImages are the chart's values keys of the images it runs.
var ChartImages = map[string]string{"webhook": "webhook", "discoverer": "discoverer"}

// ReleaseOptions configures Release.
type ReleaseOptions struct {
	Registry  string    // host[:port]/path the images and the chart go to
	Version   string    // x.y.z or vx.y.z: the images' tag, the chart's appVersion (and version, without v)
	ImagesDir string    // where Build wrote the layouts (OutDir)
	Images    []Image   // default Images
	Chart     string    // the chart directory (charts/ec2guard)
	Helm      string    // the helm binary
	PlainHTTP bool      // the registry speaks plain HTTP (a local test registry)
	Log       io.Writer // progress; default io.Discard
}

// Published is what Release pushed.
type Published struct {
	Images       map[string]string // image name -> repository@sha256:... of its index
	Chart        string            // oci://registry/charts/ec2guard
	ChartVersion string
}

// Release pushes every image's multi-arch index to <registry>/<name>:<version> and the chart,
// pinned to those digests, to oci://<registry>/charts (helm push).
func Release(ctx context.Context, o ReleaseOptions) (*Published, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	out := &Published{Images: map[string]string{}, ChartVersion: strings.TrimPrefix(o.Version, "v")}
	for _, img := range o.Images {
		ref, err := Push(ctx, filepath.Join(o.ImagesDir, img.Name), o.Registry+"/"+img.Name, o.Version, o.PlainHTTP)
		if err != nil {
			return nil, fmt.Errorf("release: image %s: %w", img.Name, err)
		}
		fmt.Fprintf(o.Log, "pushed %s (tag %s)\n", ref, o.Version)
		out.Images[img.Name] = ref
	}
	work, err := os.MkdirTemp("", "ec2guard-release-")
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	defer os.RemoveAll(work)
	chartDir := filepath.Join(work, filepath.Base(o.Chart))
	if err := os.CopyFS(chartDir, os.DirFS(o.Chart)); err != nil {
		return nil, fmt.Errorf("release: copy the chart %s: %w", o.Chart, err)
	}
	pins := map[string]ImagePin{}
	for key, img := range ChartImages {
		ref, ok := out.Images[img]
		if !ok {
			return nil, fmt.Errorf("release: the chart runs image %s, which is not among the images released", img)
		}
		repo, digest, _ := strings.Cut(ref, "@")
		pins[key] = ImagePin{Repository: repo, Tag: o.Version, Digest: digest}
	}
	if err := PinValues(filepath.Join(chartDir, "values.yaml"), pins); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	pkgDir := filepath.Join(work, "package")
	if _, err := o.helm(ctx, "package", chartDir, "--version", out.ChartVersion, "--app-version", o.Version, "--destination", pkgDir); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	tgz, err := filepath.Glob(filepath.Join(pkgDir, "*.tgz"))
	if err != nil || len(tgz) != 1 {
		return nil, fmt.Errorf("release: helm package wrote %d archives to %s, want 1", len(tgz), pkgDir)
	}
	out.Chart = "oci://" + o.Registry + "/charts"
	args := []string{"push", tgz[0], out.Chart}
	if o.PlainHTTP {
		args = append(args, "--plain-http")
	}
	msg, err := o.helm(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	fmt.Fprint(o.Log, msg)
	out.Chart += "/" + filepath.Base(o.Chart)
	fmt.Fprintf(o.Log, "pushed chart %s --version %s\n", out.Chart, out.ChartVersion)
	return out, nil
}

func (o *ReleaseOptions) check() error {
	if len(o.Images) == 0 {
		o.Images = Images
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	switch {
	case o.Registry == "":
		return errors.New("REGISTRY is empty: give host[:port]/path, e.g. ghcr.io/you/ec2guard")
	case strings.Contains(o.Registry, "://"):
		return fmt.Errorf("REGISTRY %q: give host[:port]/path without a scheme", o.Registry)
	case !semverPattern.MatchString(o.Version):
		return fmt.Errorf("VERSION %q: must be a semantic version x.y.z or x.y.z-pre (optionally with a leading v; no +build)", o.Version)
	case o.Chart == "":
		return errors.New("chart directory: empty")
	case o.Helm == "":
		return errors.New("helm binary: empty (hack/helm.sh builds one)")
	}
	if _, err := name.NewRepository(o.Registry+"/"+o.Images[0].Name, name.StrictValidation); err != nil {
		return fmt.Errorf("REGISTRY %q: %w", o.Registry, err)
	}
	return nil
}

// helm runs the helm binary and returns its stdout; an error carries its stderr.
func (o *ReleaseOptions) helm(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, o.Helm, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("helm %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String() + stderr.String(), nil
}

// LayoutIndex returns the multi-arch index of the OCI layout dir and the tag it was built with.
func LayoutIndex(dir string) (v1.ImageIndex, string, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", fmt.Errorf("OCI layout %s (run `make images`): %w", dir, err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if len(m.Manifests) != 1 {
		return nil, "", fmt.Errorf("OCI layout %s: holds %d entries, want the one index `make images` writes", dir, len(m.Manifests))
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return nil, "", fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return idx, m.Manifests[0].Annotations[RefNameAnnotation], nil
}

// Push pushes the index of the OCI layout dir to repository:tag and returns repository@digest.
// The layout must have been built for tag, so a stale build is never published under a new
// version.
func Push(ctx context.Context, dir, repository, tag string, plainHTTP bool) (string, error) {
	idx, built, err := LayoutIndex(dir)
	if err != nil {
		return "", err
	}
	if built != tag {
		return "", fmt.Errorf("%s was built as version %q, not %q: run `make images VERSION=%s` first", dir, built, tag, tag)
	}
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.NewTag(repository+":"+tag, opts...)
	if err != nil {
		return "", fmt.Errorf("image reference %s:%s: %w", repository, tag, err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return repository + "@" + d.String(), nil
}
