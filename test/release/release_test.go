// Package release_test tests `make images` and `make release` (internal/imagebuild,
// hack/imagebuild): the images are built once in TestMain (both platforms, all three binaries),
// checked from their OCI layouts, built a second time to compare digests, then released to an
// in-process registry (go-containerregistry's pkg/registry on 127.0.0.1) with the real helm, pulled
// back and checked again, down to running the binary extracted from the pulled amd64 layer and
// rendering the pulled chart.
package release_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"

	"github.com/ec2guard/ec2guard/internal/imagebuild"
	"github.com/ec2guard/ec2guard/test/harness/k8senv"
	"github.com/ec2guard/ec2guard/test/harness/testenv"
)

// testVersion is the version the test builds and releases (a pre-release with a leading v: the
// chart version drops the v, the tags keep it).
const testVersion = "v9.8.7-rc.1"

// helmEnv names the helm binary (hack/helm.sh, `make test-env`).
const helmEnv = "EC2GUARD_HELM"

// build is what TestMain built.
var build struct {
	root    string
	opts    imagebuild.BuildOptions
	results []imagebuild.Result
	err     error
}

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	tmp, err := os.MkdirTemp("", "ec2guard-images-")
	if err != nil {
		log.Fatal(err)
	}
	code := func() int {
		defer os.RemoveAll(tmp)
		build.opts, build.err = buildOptions(filepath.Join(tmp, "first"))
		if build.err == nil {
			start := time.Now()
			build.results, build.err = imagebuild.Build(context.Background(), build.opts)
			log.Printf("images built in %s", time.Since(start).Round(time.Second))
		}
		return m.Run()
	}()
	os.Exit(code)
}

// buildOptions are the options of every build in this test: the repository's HEAD commit and
// commit time, as the Makefile passes them.
func buildOptions(out string) (imagebuild.BuildOptions, error) {
	root, err := k8senv.RepoRoot()
	if err != nil {
		return imagebuild.BuildOptions{}, err
	}
	build.root = root
	commit, err := git(root, "rev-parse", "HEAD")
	if err != nil {
		return imagebuild.BuildOptions{}, err
	}
	date, err := git(root, "log", "-1", "--format=%cI")
	if err != nil {
		return imagebuild.BuildOptions{}, err
	}
	created, err := time.Parse(time.RFC3339, date)
	if err != nil {
		return imagebuild.BuildOptions{}, fmt.Errorf("commit time %q: %w", date, err)
	}
	return imagebuild.BuildOptions{ModuleRoot: root, OutDir: out, Version: testVersion, Commit: commit, Created: created}, nil
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

// built returns TestMain's images, skipping under -short.
func built(t *testing.T) []imagebuild.Result {
	t.Helper()
	if testing.Short() {
		t.Skip("builds images for two platforms: skipped with -short")
	}
	if build.err != nil {
		t.Fatalf("make images: %v", build.err)
	}
	return build.results
}

// TestImagesFromLayouts checks every layout `make images` wrote: one multi-arch index tagged with
// the version, per platform an OCI image whose config, layer and binary are right.
func TestImagesFromLayouts(t *testing.T) {
	results := built(t)
	if got := names(results); !slices.Equal(got, []string{"webhook", "discoverer", "ec2guard"}) {
		t.Fatalf("images built: %v, want webhook, discoverer, ec2guard", got)
	}
	for _, r := range results {
		t.Run(r.Image.Name, func(t *testing.T) {
			if want := filepath.Join(build.opts.OutDir, r.Image.Name); r.Layout != want {
				t.Errorf("layout at %s, want %s", r.Layout, want)
			}
			idx, tag, err := imagebuild.LayoutIndex(r.Layout)
			if err != nil {
				t.Fatal(err)
			}
			if tag != testVersion {
				t.Errorf("layout tag (%s) = %q, want %q", imagebuild.RefNameAnnotation, tag, testVersion)
			}
			if d, err := idx.Digest(); err != nil || d != r.Digest {
				t.Errorf("layout index digest %v (%v), Build reported %v", d, err, r.Digest)
			}
			checkIndex(t, idx, r.Image.Name)
		})
	}
}

// TestBuildIsReproducible builds everything a second time: the same commit gives the same
// digests, to the byte.
func TestBuildIsReproducible(t *testing.T) {
	first := built(t)
	opts := build.opts
	opts.OutDir = filepath.Join(t.TempDir(), "second")
	second, err := imagebuild.Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if len(second) != len(first) {
		t.Fatalf("second build made %d images, the first %d", len(second), len(first))
	}
	for i := range first {
		t.Logf("%s: %s and %s", first[i].Image.Name, first[i].Digest, second[i].Digest)
		if first[i].Digest != second[i].Digest || !slices.Equal(first[i].Manifests, second[i].Manifests) {
			t.Errorf("%s: first build %s %v, second %s %v", first[i].Image.Name,
				first[i].Digest, first[i].Manifests, second[i].Digest, second[i].Manifests)
		}
	}
}

// TestRelease runs `imagebuild release` (what `make release` runs) against an in-process
// registry, then pulls the images and the chart back.
func TestRelease(t *testing.T) {
	results := built(t)
	helm := testenv.Require(t, helmEnv)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg := u.Host + "/ec2guard-test"

	// A layout built for another version is never pushed under this one.
	if _, err := imagebuild.Push(t.Context(), results[0].Layout, reg+"/webhook", "v0.0.1", true); err == nil ||
		!strings.Contains(err.Error(), `was built as version "`+testVersion+`"`) {
		t.Errorf("push of a %s layout as v0.0.1: %v, want a refusal naming the version it was built as", testVersion, err)
	}

	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"), "DOCKER_CONFIG="+filepath.Join(home, "docker"))
	out := run(t, build.root, env, "go", "run", "./hack/imagebuild", "release",
		"--images", build.opts.OutDir, "--registry", reg, "--version", testVersion,
		"--chart", "charts/ec2guard", "--helm", helm, "--plain-http")
	t.Logf("imagebuild release:\n%s", out)

	pushed := map[string]string{}
	for _, r := range results {
		ref, err := name.NewTag(reg+"/"+r.Image.Name+":"+testVersion, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref, remote.WithContext(t.Context()))
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if d != r.Digest {
			t.Errorf("%s has digest %s, the layout %s", ref, d, r.Digest)
		}
		pushed[r.Image.Name] = reg + "/" + r.Image.Name + "@" + d.String()
		if !strings.Contains(out, r.Image.Name+"\t"+pushed[r.Image.Name]) {
			t.Errorf("release output does not report %s as %s", r.Image.Name, pushed[r.Image.Name])
		}
		t.Run("pulled/"+r.Image.Name, func(t *testing.T) { checkIndex(t, idx, r.Image.Name) })
	}

	// The chart: pinned to the pushed digests.
	chartVersion := strings.TrimPrefix(testVersion, "v")
	dest := t.TempDir()
	run(t, dest, env, helm, "pull", "oci://"+reg+"/charts/ec2guard", "--version", chartVersion, "--plain-http", "--destination", dest)
	tgz := filepath.Join(dest, "ec2guard-"+chartVersion+".tgz")
	meta := run(t, dest, env, helm, "show", "chart", tgz)
	var chart struct{ Version, AppVersion string }
	if err := yaml.Unmarshal([]byte(meta), &chart); err != nil {
		t.Fatalf("helm show chart: %v\n%s", err, meta)
	}
	if chart.Version != chartVersion || chart.AppVersion != testVersion {
		t.Errorf("pulled chart version %q appVersion %q, want %q and %q", chart.Version, chart.AppVersion, chartVersion, testVersion)
	}
	rendered := run(t, dest, env, helm, "template", "ec2guard", tgz, "--namespace", "ec2guard-system")
	got := renderedImages(t, rendered)
	want := map[string]string{"webhook": pushed["webhook"], "discoverer": pushed["discoverer"]}
	if len(got) != len(want) || got["webhook"] != want["webhook"] || got["discoverer"] != want["discoverer"] {
		t.Errorf("helm template of the pulled chart runs images %v, want exactly the pushed %v", got, want)
	}
}

// checkIndex checks a multi-arch index: OCI media type, exactly linux/amd64 and linux/arm64,
// and each platform's image.
func checkIndex(t *testing.T, idx v1.ImageIndex, image string) {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %q, want %q", im.MediaType, types.OCIImageIndex)
	}
	var platforms []string
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			t.Errorf("index entry %s has no platform", desc.Digest)
			continue
		}
		platforms = append(platforms, desc.Platform.OS+"/"+desc.Platform.Architecture)
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, img, image, *desc.Platform)
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("index platforms %v, want linux/amd64 and linux/arm64", platforms)
	}
}

// checkImage checks one platform's image: config (user, entrypoint, labels), the layer's files,
// the binary's build settings, and on this machine's platform runs the binary's --version.
func checkImage(t *testing.T, img v1.Image, image string, p v1.Platform) {
	t.Helper()
	plat := p.OS + "/" + p.Architecture
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("%s: manifest %q config %q, want OCI media types", plat, m.MediaType, m.Config.MediaType)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	created := build.opts.Created.UTC().Format(time.RFC3339)
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		t.Errorf("%s: config platform %s/%s", plat, cf.OS, cf.Architecture)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: user %q, want 65532:65532", plat, cf.Config.User)
	}
	entry := "/usr/local/bin/" + image
	if !slices.Equal(cf.Config.Entrypoint, []string{entry}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("%s: entrypoint %q cmd %q, want [%s] and no cmd (the chart passes only args)", plat, cf.Config.Entrypoint, cf.Config.Cmd, entry)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/ec2guard/ec2guard",
		"org.opencontainers.image.version":  testVersion,
		"org.opencontainers.image.revision": build.opts.Commit,
		"org.opencontainers.image.licenses": imagebuild.DefaultLicenses,
		"org.opencontainers.image.created":  created,
	}
	for k, v := range wantLabels {
		if got := cf.Config.Labels[k]; got != v {
			t.Errorf("%s: label %s = %q, want %q", plat, k, got, v)
		}
	}
	if !cf.Created.Time.Equal(build.opts.Created) {
		t.Errorf("%s: created %s, want the commit time %s", plat, cf.Created.Time, created)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%s: %d layers, want 1", plat, len(layers))
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("%s: layer media type %q, want %q", plat, mt, types.OCILayer)
	}
	files := readLayer(t, layers[0])
	var names []string
	for _, f := range files {
		names = append(names, f.hdr.Name)
		if !f.hdr.ModTime.Equal(build.opts.Created) {
			t.Errorf("%s: %s mtime %s, want the commit time %s", plat, f.hdr.Name, f.hdr.ModTime, created)
		}
	}
	wantNames := []string{"etc/", "etc/group", "etc/passwd", "home/", "home/nonroot/", "tmp/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/" + image}
	if !slices.Equal(names, wantNames) {
		t.Errorf("%s: layer entries %q, want %q (sorted)", plat, names, wantNames)
	}
	byName := map[string]layerFile{}
	for _, f := range files {
		byName[f.hdr.Name] = f
	}
	if f := byName["etc/passwd"]; !strings.Contains(string(f.data), "\nnonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd has no nonroot user 65532:\n%s", plat, f.data)
	}
	if f := byName["etc/group"]; !strings.Contains(string(f.data), "\nnonroot:x:65532:") {
		t.Errorf("%s: /etc/group has no nonroot group 65532:\n%s", plat, f.data)
	}
	if f := byName["tmp/"]; f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode != 0o1777 {
		t.Errorf("%s: /tmp type %c mode %o, want a directory 1777", plat, f.hdr.Typeflag, f.hdr.Mode)
	}
	bin := byName["usr/local/bin/"+image]
	if bin.hdr.Typeflag != tar.TypeReg || bin.hdr.Mode != 0o755 || bin.hdr.Uid != 0 {
		t.Fatalf("%s: binary type %c mode %o uid %d, want a root-owned 0755 file", plat, bin.hdr.Typeflag, bin.hdr.Mode, bin.hdr.Uid)
	}
	path := filepath.Join(t.TempDir(), image)
	if err := os.WriteFile(path, bin.data, 0o755); err != nil {
		t.Fatal(err)
	}
	checkBinary(t, path, image, p)
}

// checkBinary checks the binary's build settings (static, the platform, the version ldflags) and,
// where this machine can run it, its --version.
func checkBinary(t *testing.T, path, image string, p v1.Platform) {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s binary: %v", image, err)
	}
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture]
	if ef.Machine != machine {
		t.Errorf("%s binary for %s is an ELF for %s", image, p.Architecture, ef.Machine)
	}
	for _, prog := range ef.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s binary has an ELF interpreter: not static", image)
		}
	}
	ef.Close()
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		t.Fatalf("%s build info: %v", image, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["CGO_ENABLED"] != "0" || settings["GOOS"] != p.OS || settings["GOARCH"] != p.Architecture {
		t.Errorf("%s build settings CGO_ENABLED=%s GOOS=%s GOARCH=%s", image, settings["CGO_ENABLED"], settings["GOOS"], settings["GOARCH"])
	}
	if settings["-trimpath"] != "true" {
		t.Errorf("%s was built without -trimpath: its bits would depend on the build directory", image)
	}
	if image == "ec2guard" && !cliLinksVersion(t) {
		t.Logf("NOT CHECKED: cmd/ec2guard does not use %s on this branch, so its binary carries no version", imagebuild.VersionPackage)
		return
	}
	// -trimpath keeps -ldflags out of the build info; the -X values are in the binary's data.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{testVersion, build.opts.Commit} {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("%s binary for %s does not carry %q (-ldflags -X)", image, p.Architecture, s)
		}
	}
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		return
	}
	want := fmt.Sprintf("%s (commit %s, built %s, %s)", testVersion, build.opts.Commit, build.opts.Created.UTC().Format(time.RFC3339), bi.GoVersion)
	args := []string{"--version"}
	if image == "ec2guard" {
		args = []string{"version"} // the CLI's subcommand
	}
	cmd := exec.Command(path, args...)
	cmd.Env = []string{} // nothing from this machine: no kubeconfig, no AWS settings
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", image, args[0], err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("%s %s printed %q, want %q", image, args[0], bytes.TrimSpace(out), want)
	}
}

// cliLinksVersion reports whether cmd/ec2guard depends on the version package (its `version`
// command); the linker drops -X variables of a package a binary does not use.
func cliLinksVersion(t *testing.T) bool {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "./cmd/ec2guard")
	cmd.Dir = build.root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/ec2guard: %v", err)
	}
	return slices.Contains(strings.Fields(string(out)), imagebuild.VersionPackage)
}

type layerFile struct {
	hdr  *tar.Header
	data []byte
}

// readLayer reads every entry of a layer, in order.
func readLayer(t *testing.T, l v1.Layer) []layerFile {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var files []layerFile
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		data, err := io.ReadAll(io.LimitReader(tr, 512<<20))
		if err != nil {
			t.Fatalf("layer %s: %v", h.Name, err)
		}
		files = append(files, layerFile{hdr: h, data: data})
	}
}

// renderedImages maps container name to image over every Deployment of a helm template output.
func renderedImages(t *testing.T, manifests string) map[string]string {
	t.Helper()
	images := map[string]string{}
	for _, doc := range strings.Split(manifests, "\n---") {
		var obj struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct{ Name, Image string }
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("helm template output: %v\n%s", err, doc)
		}
		if obj.Kind != "Deployment" {
			continue
		}
		for _, c := range obj.Spec.Template.Spec.Containers {
			images[c.Name] = c.Image
		}
	}
	return images
}

// run runs a command and returns its stdout, failing the test with its output.
func run(t *testing.T, dir string, env []string, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func names(rs []imagebuild.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Image.Name)
	}
	return out
}
