#!/usr/bin/env bash
# k8s-assets.sh — prepares the Kubernetes control plane binaries used by envtest.
#
# Builds kube-apiserver (and kubectl when the one on PATH is too far from the
# API server's version) from the Go module k8s.io/kubernetes, and etcd from
# go.etcd.io/etcd/server/v3, each in a throwaway Go module in the cache, into
#   ${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}/k8s/k8s-<ver>-etcd-<ver>/
# and links <repo>/bin/k8s to that directory. Later runs reuse the binaries.
#
# Logs go to stderr; stdout carries only `export NAME=value` lines:
#   KUBEBUILDER_ASSETS  directory holding kube-apiserver and etcd (bin/k8s)
#   EC2GUARD_KUBECTL    kubectl binary the tests run
#
# Versions can be overridden with EC2GUARD_K8S_VERSION / EC2GUARD_ETCD_VERSION.
set -euo pipefail

K8S_VERSION=${EC2GUARD_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${EC2GUARD_ETCD_VERSION:-v3.6.16}

log() { printf '[k8s-assets] %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[[ $K8S_VERSION =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "EC2GUARD_K8S_VERSION=$K8S_VERSION is not of the form v1.MINOR.PATCH"
K8S_MINOR=${BASH_REMATCH[1]}
# The staging modules (k8s.io/api, k8s.io/client-go, ...) are tagged v0.MINOR.PATCH.
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
[[ $ETCD_VERSION =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "EC2GUARD_ETCD_VERSION=$ETCD_VERSION is not of the form v3.MINOR.PATCH"

command -v go >/dev/null 2>&1 || die "go is not on PATH; it is needed to build kube-apiserver and etcd"

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE_ROOT=${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}
K8S_CACHE="$CACHE_ROOT/k8s"
KEY="k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}"
OUT="$K8S_CACHE/$KEY"
LINK="$REPO_ROOT/bin/k8s"

# Go settings for the throwaway build modules: never a workspace, always
# module mode resolving from the proxy, regardless of the caller's GOFLAGS.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

# answers_version BIN: BIN exists and prints its version.
answers_version() {
	[[ -x $1 ]] && "$1" --version >/dev/null 2>&1
}

# kubectl_minor BIN: prints the client minor version of kubectl BIN (empty if unknown).
kubectl_minor() {
	local json
	json=$("$1" version --client -o json 2>/dev/null) || return 0
	# clientVersion is the first object carrying major/minor.
	local major minor
	major=$(printf '%s\n' "$json" | sed -n 's/^ *"major": *"\([0-9]*\).*/\1/p' | head -n1)
	minor=$(printf '%s\n' "$json" | sed -n 's/^ *"minor": *"\([0-9]*\).*/\1/p' | head -n1)
	[[ $major == 1 && -n $minor ]] && printf '%s\n' "$minor"
	return 0
}

# kubectl_fits BIN: kubectl BIN is within one minor version of the API server.
kubectl_fits() {
	local minor
	minor=$(kubectl_minor "$1")
	[[ -n $minor ]] || return 1
	local d=$((minor - K8S_MINOR))
	((d >= -1 && d <= 1))
}

# choose_kubectl [quiet]: sets KUBECTL to the kubectl to use and NEED_KUBECTL_BUILD.
choose_kubectl() {
	local quiet=${1:-} on_path
	on_path=$(command -v kubectl 2>/dev/null || true)
	if [[ -n $on_path ]] && kubectl_fits "$on_path"; then
		KUBECTL=$(readlink -f "$on_path")
		NEED_KUBECTL_BUILD=0
		return
	fi
	if [[ -n $on_path && -z $quiet ]]; then
		log "kubectl on PATH ($on_path, minor $(kubectl_minor "$on_path")) is not within one minor of 1.$K8S_MINOR; using a built one"
	fi
	KUBECTL="$OUT/kubectl"
	NEED_KUBECTL_BUILD=1
	if [[ -x $KUBECTL ]] && kubectl_fits "$KUBECTL"; then
		NEED_KUBECTL_BUILD=0
	fi
}

# init_build_module DIR MODULE VERSION: creates a fresh throwaway module in DIR
# requiring MODULE@VERSION and prints the path of MODULE's downloaded go.mod.
init_build_module() {
	local dir=$1 module=$2 version=$3
	mkdir -p "$dir"
	rm -f "$dir/go.mod" "$dir/go.sum"
	(cd "$dir" && go mod init ec2guard.local/build-assets >/dev/null 2>&1) || die "go mod init in $dir failed"
	local gomod
	gomod=$(cd "$dir" && go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
	[[ -n $gomod && -f $gomod ]] || die "could not download $module@$version (no go.mod path in 'go mod download -json' output)"
	printf '%s\n' "$gomod"
}

# staging_replaces GOMOD: prints "k8s.io/NAME" for every k8s.io/* module that
# GOMOD requires at v0.0.0 (the staging modules kubernetes replaces locally).
staging_replaces() {
	go mod edit -json "$1" | awk '
		/"Require":/ { inreq = 1; next }
		inreq && /^\t\]/ { inreq = 0 }
		inreq && /"Path":/ { gsub(/.*"Path": "|",?$/, ""); path = $0 }
		inreq && /"Version":/ {
			v = $0; gsub(/.*"Version": "|",?$/, "", v)
			if (v == "v0.0.0" && path ~ /^k8s\.io\//) print path
		}'
}

# build_kubernetes OUTDIR PKG...: builds the k8s.io/kubernetes main packages PKG... into OUTDIR.
build_kubernetes() {
	local outdir=$1
	shift
	local dir="$K8S_CACHE/build-k8s-$K8S_VERSION"
	local gomod
	gomod=$(init_build_module "$dir" k8s.io/kubernetes "$K8S_VERSION")
	local replaces
	replaces=$(staging_replaces "$gomod")
	[[ -n $replaces ]] || die "no k8s.io/* v0.0.0 requirements found in $gomod; cannot pin the staging modules"
	local args=() m
	for m in $replaces; do
		args+=("-replace=$m=$m@$STAGING_VERSION")
	done
	# Carry over kubernetes' go and godebug directives: they apply only in the main module.
	local gover
	gover=$(go mod edit -json "$gomod" | sed -n 's/^[[:space:]]*"Go": "\(.*\)",$/\1/p')
	[[ -n $gover ]] && args+=("-go=$gover")
	local kv
	while IFS= read -r kv; do
		[[ -n $kv ]] && args+=("-godebug=$kv")
	done < <(go mod edit -json "$gomod" | awk '
		/"GoDebug":/ { ing = 1; next }
		ing && /^\t\]/ { ing = 0 }
		ing && /"Key":/ { k = $0; gsub(/.*"Key": "|",?$/, "", k) }
		ing && /"Value":/ { v = $0; gsub(/.*"Value": "|",?$/, "", v); print k "=" v }')
	(cd "$dir" && go mod edit "${args[@]}") || die "go mod edit in $dir failed"
	log "pinned $(wc -w <<<"$replaces" | tr -d ' ') staging modules to $STAGING_VERSION in $dir/go.mod"

	local pkgs=() p
	for p in "$@"; do pkgs+=("k8s.io/kubernetes/$p@$K8S_VERSION"); done
	(cd "$dir" && go get "${pkgs[@]}") || die "go get ${pkgs[*]} in $dir failed"

	local ldflags="-s -w" vpkg
	for vpkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ldflags+=" -X $vpkg.gitVersion=$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$K8S_MINOR"
		ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
	done
	local targets=()
	for p in "$@"; do targets+=("k8s.io/kubernetes/$p"); done
	(cd "$dir" && go build -trimpath -ldflags="$ldflags" -o "$outdir/" "${targets[@]}") ||
		die "building ${targets[*]} failed"
}

# build_etcd OUTDIR: builds the etcd server into OUTDIR/etcd.
build_etcd() {
	local outdir=$1
	local dir="$K8S_CACHE/build-etcd-$ETCD_VERSION"
	init_build_module "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" >/dev/null
	(cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION") || die "go get etcd in $dir failed"
	(cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$outdir/etcd" go.etcd.io/etcd/server/v3) ||
		die "building etcd failed"
}

# ready: all binaries answer --version.
ready() {
	answers_version "$OUT/kube-apiserver" && answers_version "$OUT/etcd" &&
		[[ -x $KUBECTL ]] && "$KUBECTL" version --client >/dev/null 2>&1
}

build_missing() {
	local tmp="$OUT.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	trap 'rm -rf "$tmp"' EXIT
	local start pkgs=()
	answers_version "$OUT/kube-apiserver" || pkgs+=(cmd/kube-apiserver)
	((NEED_KUBECTL_BUILD)) && pkgs+=(cmd/kubectl)
	if ((${#pkgs[@]})); then
		log "building ${pkgs[*]} from k8s.io/kubernetes@$K8S_VERSION (takes several minutes the first time)"
		start=$SECONDS
		build_kubernetes "$tmp" "${pkgs[@]}"
		log "built ${pkgs[*]} in $((SECONDS - start))s"
	fi
	if ! answers_version "$OUT/etcd"; then
		log "building etcd from go.etcd.io/etcd/server/v3@$ETCD_VERSION"
		start=$SECONDS
		build_etcd "$tmp"
		log "built etcd in $((SECONDS - start))s"
	fi
	mkdir -p "$OUT"
	local f
	for f in "$tmp"/*; do
		[[ -e $f ]] || continue
		mv -f "$f" "$OUT/"
	done
	rm -rf "$tmp"
	trap - EXIT
}

link_assets() {
	mkdir -p "$(dirname "$LINK")"
	if [[ -e $LINK && ! -L $LINK ]]; then
		die "$LINK exists and is not a symlink; remove it so it can point to $OUT"
	fi
	ln -sfn "$OUT" "$LINK"
}

main() {
	mkdir -p "$K8S_CACHE"
	choose_kubectl
	if ! ready; then
		# Serialise concurrent runs (e.g. two test-env invocations) on one lock.
		exec 9>"$K8S_CACHE/.lock"
		flock 9
		choose_kubectl quiet
		if ! ready; then
			build_missing
			choose_kubectl quiet
			ready || die "binaries in $OUT do not answer --version after the build"
		fi
		flock -u 9
	fi
	link_assets
	log "kube-apiserver: $("$OUT/kube-apiserver" --version 2>&1 | head -n1)"
	log "etcd: $("$OUT/etcd" --version 2>&1 | head -n1)"
	log "kubectl: $KUBECTL"
	printf 'export KUBEBUILDER_ASSETS=%q\n' "$LINK"
	printf 'export EC2GUARD_KUBECTL=%q\n' "$KUBECTL"
}

main "$@"
