// Package imagebuild builds ec2guard's container images without a container engine and publishes
// them with the Helm chart. It is the implementation of `make images` and `make release`
// (hack/imagebuild); docs/install.md describes both.
//
// An image is one tar layer on an empty base: the static binary at /usr/local/bin/<name>,
// /etc/passwd and /etc/group with the user nonroot (65532), its home directory and /tmp (1777).
// The binaries carry their CA roots (golang.org/x/crypto/x509roots/fallback), so the image needs no
// CA file. Builds are reproducible: every timestamp is the commit time, entries are sorted, the
// gzip header carries no time and the Go build is -trimpath without VCS stamping, so the same
// commit and Go toolchain give the same digests.
package imagebuild

import (
	"archive/tar"
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
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image is one image the project ships.
type Image struct {
	Name    string // image and binary name; the repository is <registry>/<Name>
	Package string // Go main package, relative to the module root
	Title   string // org.opencontainers.image.title / description
}

// Images are the three images: the admission webhook, the discoverer and the CLI (for CI).
var Images = []Image{
	{Name: "webhook", Package: "./cmd/webhook", Title: "ec2guard admission webhook for Gloo EC2 Upstreams"},
	{Name: "discoverer", Package: "./cmd/discoverer", Title: "ec2guard discoverer: EC2 instances of Gloo Upstreams as EndpointSlices"},
	{Name: "ec2guard", Package: "./cmd/ec2guard", Title: "ec2guard CLI: check, simulate, report"},
}

// DefaultPlatforms are the platforms of every image index.
var DefaultPlatforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

const (
	// UID and GID of the user the images run as (distroless "nonroot"; the chart's runAsUser).
	UID = 65532
	GID = 65532
	// User is the image config's User.
	User = "65532:65532"
	// BinDir is where the binary lives; the entrypoint is BinDir/<name>.
	BinDir = "/usr/local/bin"
	// DefaultSource is org.opencontainers.image.source.
	DefaultSource = "https://github.com/ec2guard/ec2guard"
	// DefaultLicenses is org.opencontainers.image.licenses when none is given: the repository
	// declares no license (SPDX "NOASSERTION").
	DefaultLicenses = "NOASSERTION"
	// VersionPackage is the package whose variables -ldflags -X sets.
	VersionPackage = "github.com/ec2guard/ec2guard/internal/version"
	// RefNameAnnotation names the index in an OCI layout (its tag: the version).
	RefNameAnnotation = "org.opencontainers.image.ref.name"
)

// OCI label keys.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelVersion  = "org.opencontainers.image.version"
	LabelRevision = "org.opencontainers.image.revision"
	LabelLicenses = "org.opencontainers.image.licenses"
	LabelCreated  = "org.opencontainers.image.created"
	LabelTitle    = "org.opencontainers.image.title"
)

// tagPattern is what a registry accepts as a tag (OCI distribution spec).
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// commitPattern is a git object name, or "unknown".
var commitPattern = regexp.MustCompile(`^([0-9a-f]{7,64}|unknown)$`)

// BuildOptions configures Build.
type BuildOptions struct {
	ModuleRoot string        // directory of go.mod; go build runs there
	OutDir     string        // layouts are written to OutDir/<name>
	Version    string        // the version --version prints, the label and the layout's tag
	Commit     string        // the git commit (label revision, --version)
	Created    time.Time     // the commit time: build date, label created and every mtime
	Platforms  []v1.Platform // default DefaultPlatforms
	Images     []Image       // default Images
	Source     string        // default DefaultSource
	Licenses   string        // default DefaultLicenses
	Go         string        // the go command; default "go"
	Log        io.Writer     // progress; default io.Discard
}

// Result is one built image.
type Result struct {
	Image  Image
	Layout string  // the OCI layout directory
	Digest v1.Hash // digest of the multi-arch index
	// Manifests are the per-platform image digests, in the order of the platforms.
	Manifests []v1.Hash
}

func (o *BuildOptions) defaults() error {
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if len(o.Images) == 0 {
		o.Images = Images
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	if o.Licenses == "" {
		o.Licenses = DefaultLicenses
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	switch {
	case o.ModuleRoot == "":
		return errors.New("module root: empty")
	case o.OutDir == "":
		return errors.New("output directory: empty")
	case !tagPattern.MatchString(o.Version):
		return fmt.Errorf("version %q: must be usable as an image tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')", o.Version)
	case !commitPattern.MatchString(o.Commit):
		return fmt.Errorf("commit %q: must be a git commit hash (hex) or \"unknown\"", o.Commit)
	case o.Created.IsZero():
		return errors.New("created: the commit time is required (it is every timestamp of the image)")
	}
	o.Created = o.Created.UTC().Truncate(time.Second)
	return nil
}

// LDFlags are the -ldflags of every build: symbols stripped, and the version variables.
func LDFlags(version, commit string, created time.Time) string {
	return fmt.Sprintf("-s -w -X %[1]s.version=%[2]s -X %[1]s.commit=%[3]s -X %[1]s.buildDate=%[4]s",
		VersionPackage, version, commit, created.UTC().Format(time.RFC3339))
}

// Build compiles the images' binaries for every platform and writes one OCI layout per image,
// holding a multi-arch index tagged with the version. It contacts no registry.
func Build(ctx context.Context, o BuildOptions) ([]Result, error) {
	if err := o.defaults(); err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	work, err := os.MkdirTemp(o.OutDir, ".build-")
	if err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	defer os.RemoveAll(work)

	binDirs := make([]string, len(o.Platforms))
	for i, p := range o.Platforms {
		binDirs[i] = filepath.Join(work, p.OS+"_"+p.Architecture)
		if err := goBuild(ctx, o, p, binDirs[i]); err != nil {
			return nil, err
		}
	}
	results := make([]Result, 0, len(o.Images))
	for _, img := range o.Images {
		r, err := assemble(o, img, binDirs, work)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.Name, err)
		}
		fmt.Fprintf(o.Log, "%s\t%s@%s\n", img.Name, r.Layout, r.Digest)
		results = append(results, r)
	}
	return results, nil
}

// goBuild builds every image's binary for one platform into dir: static, -trimpath, no VCS
// stamping (an untracked file would change the binary), baseline CPU features.
func goBuild(ctx context.Context, o BuildOptions, p v1.Platform, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", LDFlags(o.Version, o.Commit, o.Created), "-o", dir + string(filepath.Separator)}
	for _, img := range o.Images {
		args = append(args, img.Package)
	}
	fmt.Fprintf(o.Log, "go build for %s/%s (%d binaries)\n", p.OS, p.Architecture, len(o.Images))
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir = o.ModuleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = o.Log, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build for %s/%s: %w\n%s", p.OS, p.Architecture, err, stderr.String())
	}
	return nil
}

// assemble writes the OCI layout of one image from its per-platform binaries.
func assemble(o BuildOptions, img Image, binDirs []string, work string) (Result, error) {
	labels := map[string]string{
		LabelSource:   o.Source,
		LabelVersion:  o.Version,
		LabelRevision: o.Commit,
		LabelLicenses: o.Licenses,
		LabelCreated:  o.Created.Format(time.RFC3339),
		LabelTitle:    img.Title,
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	res := Result{Image: img}
	for i, p := range o.Platforms {
		im, err := platformImage(o, img, p, filepath.Join(binDirs[i], img.Name), labels, work)
		if err != nil {
			return Result{}, fmt.Errorf("%s/%s: %w", p.OS, p.Architecture, err)
		}
		d, err := im.Digest()
		if err != nil {
			return Result{}, err
		}
		res.Manifests = append(res.Manifests, d)
		platform := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: im, Descriptor: v1.Descriptor{Platform: &platform}})
	}
	idx, ok := mutate.Annotations(idx, labels).(v1.ImageIndex)
	if !ok {
		return Result{}, errors.New("annotating the index did not give an index")
	}
	d, err := idx.Digest()
	if err != nil {
		return Result{}, err
	}
	res.Digest = d

	// Written next to the final directory, then renamed over it: an interrupted build leaves the
	// previous layout intact.
	final := filepath.Join(o.OutDir, img.Name)
	tmp := filepath.Join(work, "layout-"+img.Name)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return Result{}, fmt.Errorf("create the OCI layout: %w", err)
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: o.Version})); err != nil {
		return Result{}, fmt.Errorf("write the OCI layout: %w", err)
	}
	if err := os.RemoveAll(final); err != nil {
		return Result{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return Result{}, err
	}
	res.Layout = final
	return res, nil
}

// platformImage is the image of one binary for one platform.
func platformImage(o BuildOptions, img Image, p v1.Platform, binary string, labels map[string]string, work string) (v1.Image, error) {
	tarPath := filepath.Join(work, fmt.Sprintf("%s-%s-%s.tar", img.Name, p.OS, p.Architecture))
	if err := writeRootFS(tarPath, img.Name, binary, o.Created); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	created := v1.Time{Time: o.Created}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	im, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "hack/imagebuild: " + img.Package, Comment: "static binary, /etc/passwd, /etc/group, /tmp"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := im.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Author = o.Source
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: []string{BinDir + "/" + img.Name},
		Env:        []string{"PATH=" + BinDir + ":/usr/bin:/bin"},
		WorkingDir: "/",
		Labels:     labels,
	}
	return mutate.ConfigFile(im, cf)
}

// entry is one file of the root filesystem.
type entry struct {
	name     string // without leading slash; directories end in '/'
	mode     int64
	uid, gid int
	data     []byte // regular files given inline
	path     string // regular file copied from disk
}

// writeRootFS writes the layer's tar: sorted entries, fixed owner, mode and mtime, USTAR format.
func writeRootFS(tarPath, name, binary string, mtime time.Time) error {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	bin := strings.TrimPrefix(BinDir, "/")
	entries := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: UID, gid: GID},
		{name: "tmp/", mode: 0o1777},
	}
	parts := strings.Split(bin, "/")
	for i := range parts {
		entries = append(entries, entry{name: strings.Join(parts[:i+1], "/") + "/", mode: 0o755})
	}
	entries = append(entries, entry{name: bin + "/" + name, mode: 0o755, path: binary})

	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	err = writeEntries(tw, entries, mtime)
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer tar: %w", err)
	}
	return nil
}

func writeEntries(tw *tar.Writer, entries []entry, mtime time.Time) error {
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime, Format: tar.FormatUSTAR}
		var r io.Reader
		switch {
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag = tar.TypeDir
		case e.path != "":
			f, err := os.Open(e.path)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			h.Typeflag, h.Size, r = tar.TypeReg, st.Size(), f
		default:
			h.Typeflag, h.Size, r = tar.TypeReg, int64(len(e.data)), bytes.NewReader(e.data)
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if r != nil {
			if _, err := io.Copy(tw, r); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	return nil
}
