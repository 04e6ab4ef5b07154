#!/usr/bin/env bash
# Installs the IAM oracle (@cloud-copilot/iam-simulate behind test/oracle/oracle.mjs) for the
# integration tests and prints `export EC2GUARD_ORACLE=<abs path of the script>` on stdout.
#
# iam-simulate is AGPL-3.0-or-later: it is a test tool fetched from the npm registry at test time,
# never vendored or copied into the repository.
#
# Layout (cached outside the clone, shared by every clone of the repository):
#   $EC2GUARD_CACHE/iam-oracle/<sha256 of package.json + package-lock.json>/node_modules/
#   $EC2GUARD_CACHE/iam-oracle/<same>/oracle-<sha256 of oracle.mjs>.mjs
# Node resolves the script's imports from the node_modules beside it, so the printed path works
# from any clone. The clone's .cache/iam-oracle is a symlink to that directory (used by
# `go generate ./pkg/policycheck/iamdata/`). Idempotent: a second run takes well under a second.
# Logs go to stderr; stdout carries only the export line.
set -euo pipefail

log() { echo "oracle.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/test/oracle"
cache_root="${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}/iam-oracle"

command -v node >/dev/null || die "node not found on PATH (Node.js >= 20 is required)"
command -v npm >/dev/null || die "npm not found on PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node.js >= 20 is required, found $(node --version)"
for f in package.json package-lock.json oracle.mjs; do
  [[ -f "$src/$f" ]] || die "missing $src/$f"
done

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
deps_hash=$(hash_of "$src/package.json" "$src/package-lock.json")
script_hash=$(hash_of "$src/oracle.mjs")
dir="$cache_root/$deps_hash"
script="$dir/oracle-$script_hash.mjs"

if [[ -f "$dir/.complete" ]]; then
  log "reusing $dir"
else
  log "installing npm dependencies of test/oracle into $dir (npm ci)"
  mkdir -p "$cache_root"
  tmp=$(mktemp -d "$cache_root/.tmp-$deps_hash.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  cp "$src/package.json" "$src/package-lock.json" "$tmp/"
  # --ignore-scripts: nothing here needs install scripts; --omit=dev: test tool, runtime deps only.
  (cd "$tmp" && npm ci --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=warn) >&2 ||
    die "npm ci failed in $tmp"
  touch "$tmp/.complete"
  if ! mv -T "$tmp" "$dir" 2>/dev/null; then
    # Another run finished first; its result is as good as ours.
    [[ -f "$dir/.complete" ]] || die "cannot move $tmp to $dir"
    rm -rf "$tmp"
  fi
  trap - EXIT
fi

if ! cmp -s "$src/oracle.mjs" "$script" 2>/dev/null; then
  tmp_script=$(mktemp "$dir/.oracle.XXXXXX")
  cp "$src/oracle.mjs" "$tmp_script"
  mv -f "$tmp_script" "$script"
  log "installed $script"
fi

# Smoke test: the script must start and resolve its modules (an empty input gives no output).
node "$script" </dev/null >&2 || die "$script does not run"

mkdir -p "$root/.cache"
link="$root/.cache/iam-oracle"
if [[ -e "$link" && ! -L "$link" ]]; then
  die "$link exists and is not a symlink; remove it and run again"
fi
ln -sfn "$dir" "$link"

versions=$(cd "$dir" && node -p 'const l = require("./package-lock.json").packages;
  ["iam-simulate", "iam-data"].map((p) => `@cloud-copilot/${p}@${l["node_modules/@cloud-copilot/" + p].version}`).join(" ")')
log "ready: $versions ($link -> $dir)"
echo "export EC2GUARD_ORACLE=$script"
