#!/usr/bin/env bash
# `make demo`: ec2guard's tutorial against the real product. Prepares the parts `make test` also
# uses (kube-apiserver, etcd and kubectl; moto; helm — cached under $EC2GUARD_CACHE, built on the
# first run), then runs hack/demo (package test/demo): a local control plane, moto seeded with the
# tutorial's IAM users and instances, the chart's RBAC and webhook configurations, the real
# bin/webhook and bin/discoverer, and each tutorial step as a real kubectl command with its output.
# Everything it starts is stopped at the end, on failure and on Ctrl-C; logs stay in .cache/demo/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
began=$SECONDS
# hack/demo prints the time since this moment as the demo's total.
export EC2GUARD_DEMO_STARTED=${EC2GUARD_DEMO_STARTED:-$(date +%s%N)}

for b in webhook discoverer ec2guard; do
  [[ -x bin/$b ]] || { echo "demo: bin/$b not found; run 'make build' (or 'make demo')" >&2; exit 2; }
done

cache=${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}
cold=()
compgen -G "$cache/k8s/k8s-*/kube-apiserver" >/dev/null || cold+=("kube-apiserver, etcd and kubectl built from source: about 5 minutes on 2 idle cores, up to 20 on a busy machine")
compgen -G "$cache/moto/*/venv/bin/moto_server" >/dev/null || cold+=("moto installed from PyPI: about 30 seconds")
compgen -G "$cache/helm/*/helm" >/dev/null || cold+=("helm built from source: about 3 minutes")
if ((${#cold[@]})); then
  echo "demo: first run on this machine; preparing the cached parts (later runs skip this):"
  for c in "${cold[@]}"; do echo "  - $c"; done
  echo "  progress follows; the cache is $cache"
fi

mkdir -p .cache
env_file=$(mktemp)
parts_log=.cache/demo-parts.log
trap 'rm -f "$env_file"' EXIT
prepare() {
  hack/k8s-assets.sh
  hack/moto.sh
  hack/helm.sh
}
if ((${#cold[@]})); then
  prepare >"$env_file"
else
  # Warm: the scripts only check their caches; their messages are shown when one fails.
  prepare >"$env_file" 2>"$parts_log" || { cat "$parts_log" >&2; exit 1; }
fi
# shellcheck disable=SC1090
source "$env_file"
if ((${#cold[@]})); then
  echo "demo: parts ready after $((SECONDS - began)) s"
fi

go build -o .cache/bin/demo ./hack/demo
trap - EXIT
rm -f "$env_file"
exec .cache/bin/demo "$@"
