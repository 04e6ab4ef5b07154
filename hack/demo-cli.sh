#!/usr/bin/env bash
# ec2guard offline CLI demo (`make demo-cli`): runs `ec2guard check` over examples/ and shows what is accepted, what is rejected and
# why. `make demo-cli` builds bin/ec2guard first. Exit code 1 from a check is the expected answer for a
# broken example; the demo fails only when a verdict is not the expected one or input is unreadable.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${EC2GUARD_BIN:-bin/ec2guard}
if [[ ! -x $BIN ]]; then
  echo "demo: $BIN not found; run 'make build' first" >&2
  exit 2
fi

cases=0
unexpected=0
bold=$'\e[1m'
reset=$'\e[0m'
if [[ ! -t 1 ]]; then bold='' reset=''; fi

# run_case TITLE EXPECTED_EXIT ARGS... — prints a header, the command and its output, and checks the
# exit code (0 accepted, 1 rejected, 2 input error).
run_case() {
  local title=$1 expect=$2
  shift 2
  cases=$((cases + 1))
  printf '\n%s=== %s%s\n$ ec2guard check %s\n' "$bold" "$title" "$reset" "$*"
  local rc=0
  "$BIN" check "$@" 2>&1 || rc=$?
  if [[ $rc -ne $expect ]]; then
    printf '%s!!! expected exit %d, got %d%s\n' "$bold" "$expect" "$rc" "$reset"
    unexpected=$((unexpected + 1))
  fi
}

# expect_of FILE — 1 for "# expect: rejected ...", 0 for "# expect: warning ...", 2 for
# "# expect: input-error ..." (strict input: the CLI refuses the file itself).
expect_of() {
  local verdict
  verdict=$(sed -n 's/^# expect: \([a-z-]*\) .*/\1/p' "$1")
  case $verdict in
    rejected) echo 1 ;;
    warning) echo 0 ;;
    input-error) echo 2 ;;
    *) echo "demo: $1 has no '# expect:' line" >&2; exit 2 ;;
  esac
}

echo "${bold}ec2guard demo${reset}: offline verdicts for Gloo EC2 Upstreams (codes: docs/codes.md)"

run_case "The tutorial upstream from the EC2 plugin notes (legacy shape spec.upstreamSpec.awsEc2) with its secret" 0 \
  -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml
run_case "The same upstream in the current shape (spec.awsEc2)" 0 \
  -f examples/seed-upstream-demo-v1.yaml -f examples/seed-secret.yaml

# The verdicts, without where each Upstream was read (file and line differ by design).
legacy_json=$("$BIN" check -o json -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml | grep -v '"file"\|"line"' || true)
v1_json=$("$BIN" check -o json -f examples/seed-upstream-demo-v1.yaml -f examples/seed-secret.yaml | grep -v '"file"\|"line"' || true)
cases=$((cases + 1))
printf '\n%s=== Legacy and current shape give the same verdict (-o json)%s\n' "$bold" "$reset"
echo "$v1_json"
if [[ -n $legacy_json && $legacy_json == "$v1_json" ]]; then
  echo "same verdict for both shapes: yes"
else
  printf '%s!!! the two shapes give different verdicts%s\n' "$bold" "$reset"
  diff <(echo "$legacy_json") <(echo "$v1_json") || true
  unexpected=$((unexpected + 1))
fi

run_case "IAM: the tutorial upstream with the design notes' sample policy (scoped to instance ARNs and a tag condition)" 1 \
  -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml --policy examples/seed-policy.json
run_case "IAM: the same with the fixed policy (Resource \"*\", region pinned with aws:RequestedRegion)" 0 \
  -f examples/seed-upstream-demo.yaml -f examples/seed-secret.yaml --policy examples/fixed-policy.json
run_case "IAM: the fixed policy for an upstream in eu-west-1 (the policy pins us-east-1)" 1 \
  -f examples/seed-upstream-demo-eu-west-1.yaml -f examples/seed-secret.yaml --policy examples/fixed-policy.json

for f in examples/broken/*.yaml; do
  title=$(sed -n '1s/^# //p' "$f")
  run_case "$(basename "$f" .yaml): $title" "$(expect_of "$f")" -f examples/seed-secret.yaml -f "$f"
done

run_case "Input error: a policy file that is not JSON (exit 2)" 2 \
  -f examples/seed-upstream-demo.yaml --policy examples/seed-secret.yaml

echo
if [[ $unexpected -gt 0 ]]; then
  echo "${bold}demo: $unexpected of $cases cases did not give the expected verdict${reset}" >&2
  exit 1
fi
echo "${bold}demo: $cases cases, every verdict as expected${reset}"
