#!/usr/bin/env bash
# Installs moto server (the AWS emulator the integration tests use: EC2, IAM, STS) from PyPI into a
# venv cached by version, links it to the clone's .cache/moto-venv and prints
#   export EC2GUARD_MOTO_SERVER=<abs path of moto_server>
# on stdout. Logs go to stderr. Idempotent: a second run only checks the venv (about a second);
# a venv that no longer imports moto, or that was built from other pins or another Python, is rebuilt.
#
# Every package in the venv is pinned below (pip constraints), so two machines get the same code.
# To move to a newer moto: change MOTO_VERSION, install it into a scratch venv with
# `pip install 'moto[server]==NEW'`, paste its `pip freeze` over the constraints, and run the tests.
set -euo pipefail

MOTO_VERSION=5.2.5

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${EC2GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ec2guard}/moto/$MOTO_VERSION
venv=$cache/venv
server=$venv/bin/moto_server

log() { echo "moto: $*" >&2; }

# The full dependency set of moto[server]==5.2.5, as resolved on Python 3.11 (pip freeze).
constraints() {
  cat <<'EOF'
annotated-types==0.8.0
antlr4-python3-runtime==4.13.2
attrs==26.1.0
aws-xray-sdk==2.15.0
blinker==1.9.0
boto3==1.44.8
botocore==1.44.8
certifi==2026.10.19.post1
cffi==2.1.1
cfn-lint==1.58.0
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
docker==7.2.0
Flask==3.1.3
flask-cors==6.0.5
graphql-core==3.3.2
idna==3.20
itsdangerous==2.2.0
Jinja2==3.1.6
jmespath==1.1.0
joserfc==1.8.0
jsonpatch==1.48
jsonpath-ng==1.16.0
jsonpointer==3.12
jsonschema==4.26.0
jsonschema-path==0.5.0
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
MarkupSafe==3.0.4
moto==5.2.5
mpmath==1.3.0
networkx==3.6.1
openapi-schema-validator==0.9.0
openapi-spec-validator==0.9.0
pathable==0.6.0
py-partiql-parser==0.6.3
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
pyparsing==3.3.3
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
PyYAML==6.0.4
referencing==0.37.0
regex==2026.11.19
requests==2.34.2
responses==0.26.3
rfc3339-validator==0.1.4
rpds-py==2026.9.1
s3transfer==0.19.3
six==1.17.0
sympy==1.14.0
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
wrapt==2.5.2
xmltodict==1.0.4
EOF
}

# The stamp records what the venv was built from; a venv whose stamp differs is rebuilt.
stamp() {
  {
    echo "moto[server]==$MOTO_VERSION"
    python3 -c 'import sys; print(sys.version)'
    constraints
  } | sha256sum | cut -d' ' -f1
}

# healthy: the venv exists, was built from the same inputs, and imports the moto services we use.
healthy() {
  [[ -x $server && -f $cache/stamp && "$(cat "$cache/stamp")" == "$want" ]] || return 1
  "$venv/bin/python" - "$MOTO_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import moto.server, moto.ec2, moto.iam, moto.sts  # noqa: F401
sys.exit(0 if version("moto") == sys.argv[1] else 1)
EOF
}

install() {
  log "installing moto[server]==$MOTO_VERSION into $venv (takes about half a minute)"
  local start=$SECONDS
  rm -rf "$venv" "$cache/stamp"
  python3 -m venv "$venv"
  local cfile=$cache/constraints.txt
  constraints >"$cfile"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --constraint "$cfile" "moto[server]==$MOTO_VERSION" >&2
  "$venv/bin/python" -m pip check --disable-pip-version-check >&2
  echo "$want" >"$cache/stamp"
  healthy || { log "moto installed but does not import; see above"; exit 1; }
  log "installed in $((SECONDS - start))s"
}

command -v python3 >/dev/null || { log "python3 not found on PATH (needed for the moto venv)"; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null ||
  { log "python3 lacks venv/ensurepip (on Debian: apt-get install python3-venv)"; exit 1; }

mkdir -p "$cache"
# Several clones or helpers may run this at once: one installs, the others wait for it.
exec 9>"$cache/.lock"
flock 9

want=$(stamp)
if healthy; then
  log "moto $MOTO_VERSION ready (cached at $venv)"
else
  install
fi

mkdir -p "$root/.cache"
link=$root/.cache/moto-venv
[[ -L $link || ! -e $link ]] || rm -rf "$link"
ln -sfn "$venv" "$link"
printf 'export EC2GUARD_MOTO_SERVER=%q\n' "$server"
