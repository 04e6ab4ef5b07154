#!/usr/bin/env bash
# helm.sh — prepares the helm binary the chart tests (test/chart) run.
#
# Builds helm.sh/helm/v3/cmd/helm from the Go module proxy in a throwaway Go
# module under
#   ${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}/helm/<version>/
# and links <repo>/bin/helm to the binary. Later runs reuse it (seconds).
#
# Helm 3 rather than 4: Helm 3 is what most clusters are still installed with, and a chart of
# apiVersion v2 renders the same with both; the tests therefore exercise the more common client.
# Override with EC2GUARD_HELM_VERSION (a v3.x.y tag).
#
# The build sets the same -ldflags as Helm's Makefile: the version, and the Kubernetes version
# that `helm template`/`helm lint` assume (from the k8s.io/client-go helm requires). Without them a
# source build assumes Kubernetes v1.20 and rejects the chart's kubeVersion ">=1.30.0-0".
#
# Logs go to stderr; stdout carries only `export NAME=value` lines:
#   EC2GUARD_HELM  the helm binary (bin/helm)
set -euo pipefail

HELM_VERSION=${EC2GUARD_HELM_VERSION:-v3.22.0}

log() { printf '[helm] %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

[[ $HELM_VERSION =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "EC2GUARD_HELM_VERSION=$HELM_VERSION is not of the form v3.MINOR.PATCH"
command -v go >/dev/null 2>&1 || die "go is not on PATH; it is needed to build helm"

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
CACHE_ROOT=${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}
HELM_CACHE="$CACHE_ROOT/helm"
OUT="$HELM_CACHE/$HELM_VERSION"
BIN="$OUT/helm"
LINK="$REPO_ROOT/bin/helm"
MODULE=helm.sh/helm/v3

# Go settings for the throwaway build module: never a workspace, always module mode resolving
# from the proxy, regardless of the caller's GOFLAGS.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

# ready: the cached binary reports the wanted version.
ready() {
	[[ -x $BIN ]] && [[ $("$BIN" version --template '{{.Version}}' 2>/dev/null) == "$HELM_VERSION" ]]
}

# build: builds helm into $BIN through a temporary file (an interrupted build leaves nothing).
build() {
	local dir="$OUT/build"
	mkdir -p "$dir"
	rm -f "$dir/go.mod" "$dir/go.sum"
	(cd "$dir" && go mod init ec2guard.local/build-helm >/dev/null 2>&1) || die "go mod init in $dir failed"
	(cd "$dir" && go get "$MODULE/cmd/helm@$HELM_VERSION") || die "go get $MODULE/cmd/helm@$HELM_VERSION in $dir failed"

	# Helm's go directive applies only in the main module: carry it over.
	local gomod gover
	gomod=$(cd "$dir" && go list -m -f '{{.GoMod}}' "$MODULE") || die "go list -m $MODULE failed"
	gover=$(go mod edit -json "$gomod" | sed -n 's/^[[:space:]]*"Go": "\(.*\)",$/\1/p')
	if [[ -n $gover ]]; then
		(cd "$dir" && go mod edit -go="$gover") || die "go mod edit -go=$gover failed"
	fi

	# The Kubernetes version helm assumes, as Helm's Makefile derives it: client-go v0.M.x -> 1.M.
	local cgo k8s_minor
	cgo=$(cd "$dir" && go list -m -f '{{.Version}}' k8s.io/client-go) || die "go list -m k8s.io/client-go failed"
	[[ $cgo =~ ^v0\.([0-9]+)\. ]] || die "unexpected k8s.io/client-go version $cgo required by helm"
	k8s_minor=${BASH_REMATCH[1]}

	local ldflags="-s -w"
	ldflags+=" -X $MODULE/internal/version.version=$HELM_VERSION"
	ldflags+=" -X $MODULE/internal/version.gitTreeState=clean"
	ldflags+=" -X $MODULE/pkg/lint/rules.k8sVersionMajor=1 -X $MODULE/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
	ldflags+=" -X $MODULE/pkg/chartutil.k8sVersionMajor=1 -X $MODULE/pkg/chartutil.k8sVersionMinor=$k8s_minor"

	local tmp="$BIN.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	(cd "$dir" && go build -trimpath -ldflags="$ldflags" -o "$tmp" "$MODULE/cmd/helm") || die "building helm failed"
	mv -f "$tmp" "$BIN"
	trap - EXIT
	log "helm assumes Kubernetes v1.$k8s_minor (from k8s.io/client-go $cgo)"
}

link_helm() {
	mkdir -p "$(dirname "$LINK")"
	if [[ -e $LINK && ! -L $LINK ]]; then
		die "$LINK exists and is not a symlink; remove it so it can point to $BIN"
	fi
	ln -sfn "$BIN" "$LINK"
}

main() {
	mkdir -p "$OUT"
	if ! ready; then
		# Serialise concurrent runs on one lock.
		exec 9>"$HELM_CACHE/.lock"
		flock 9
		if ! ready; then
			log "building $MODULE/cmd/helm@$HELM_VERSION (a few minutes the first time)"
			local start=$SECONDS
			build
			ready || die "$BIN does not report version $HELM_VERSION after the build"
			log "built helm in $((SECONDS - start))s"
		fi
		flock -u 9
	fi
	link_helm
	log "helm: $("$BIN" version --short 2>&1)"
	printf 'export EC2GUARD_HELM=%q\n' "$LINK"
}

main "$@"
