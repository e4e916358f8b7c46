#!/usr/bin/env bash
# Lints the committed OpenAPI document (openapi/openapi.json, or the files
# given as arguments) with two independent validators, each pinned to an
# exact version under tools/openapi-lint/:
#   - openapi-spec-validator (PyPI; requirements.txt pins it and every
#     dependency), in a virtual environment under .cache/ (Debian's pip
#     refuses system-wide installs);
#   - @redocly/cli lint (npm; package.json + package-lock.json), installed
#     with `npm ci` under .cache/, with redocly.yaml's rules.
# Installs are cached per lock file (a changed pin installs afresh), so a
# second run goes straight to linting. Needs no PostgreSQL, Kafka or gateway.
# Exits non-zero when either validator reports any error.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/tools/openapi-lint"
CACHE="$ROOT/.cache/openapi-lint"
cd "$ROOT"
if [[ $# -eq 0 ]]; then set -- openapi/openapi.json; fi

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  echo "lint-openapi: installing $* with apt-get" >&2
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
# Short digest of a lock file: names the cached install made from it.
digest() { sha256sum "$1" | cut -c1-16; }

# openapi-spec-validator in .cache/openapi-lint/venv-<digest>.
venv="$CACHE/venv-$(digest "$TOOLS/requirements.txt")"
if [[ ! -f "$venv/.installed" ]]; then
  command -v python3 >/dev/null || apt_install python3
  # Debian splits venv (and the ensurepip it needs) into python3-venv.
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  rm -rf "$CACHE"/venv-*  # this one, half made, or one of an older pin
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$TOOLS/requirements.txt"
  touch "$venv/.installed"
fi

# @redocly/cli in .cache/openapi-lint/npm-<digest>/node_modules.
npm_dir="$CACHE/npm-$(digest "$TOOLS/package-lock.json")"
if [[ ! -f "$npm_dir/.installed" ]]; then
  command -v npm >/dev/null || apt_install nodejs npm
  # The pinned @redocly/cli's `engines` asks for Node >=20.19 <21 or >=22.12
  # (older Debian releases package an older Node): say so rather than fail obscurely.
  node -e 'const [a, b] = process.versions.node.split(".").map(Number);
    process.exit((a === 20 && b >= 19) || a > 22 || (a === 22 && b >= 12) ? 0 : 1)' ||
    { echo "lint-openapi: @redocly/cli needs Node.js 20.19+ or 22.12+, found $(node --version)" >&2; exit 1; }
  rm -rf "$CACHE"/npm-*
  mkdir -p "$npm_dir"
  cp "$TOOLS/package.json" "$TOOLS/package-lock.json" "$npm_dir/"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$npm_dir/.installed"
fi

status=0
echo "== openapi-spec-validator $("$venv/bin/pip" show openapi-spec-validator | sed -n 's/^Version: //p')"
"$venv/bin/openapi-spec-validator" --validation-errors all "$@" || status=1
# No usage reports from CI, no update notice (the version is pinned on purpose).
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
echo "== @redocly/cli $("$npm_dir/node_modules/.bin/redocly" --version)"
"$npm_dir/node_modules/.bin/redocly" lint --config "$TOOLS/redocly.yaml" "$@" || status=1
if [[ $status != 0 ]]; then echo "lint-openapi: FAILED" >&2; fi
exit $status
