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

source "$ROOT/scripts/pinned-tools.sh"
# openapi-spec-validator in .cache/openapi-lint/venv-<digest>.
venv="$(pinned_venv "$TOOLS/requirements.txt" "$CACHE")"
# @redocly/cli in .cache/openapi-lint/npm-<digest>/node_modules. Its
# `engines` asks for Node >=20.19 <21 or >=22.12 (older Debian releases
# package an older Node): say so rather than fail obscurely.
command -v node >/dev/null || apt_install nodejs npm
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  process.exit((a === 20 && b >= 19) || a > 22 || (a === 22 && b >= 12) ? 0 : 1)' ||
  { echo "lint-openapi: @redocly/cli needs Node.js 20.19+ or 22.12+, found $(node --version)" >&2; exit 1; }
npm_dir="$(pinned_npm "$TOOLS" "$CACHE")"

status=0
echo "== openapi-spec-validator $("$venv/bin/pip" show openapi-spec-validator | sed -n 's/^Version: //p')"
"$venv/bin/openapi-spec-validator" --validation-errors all "$@" || status=1
# No usage reports from CI, no update notice (the version is pinned on purpose).
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
echo "== @redocly/cli $("$npm_dir/node_modules/.bin/redocly" --version)"
"$npm_dir/node_modules/.bin/redocly" lint --config "$TOOLS/redocly.yaml" "$@" || status=1
if [[ $status != 0 ]]; then echo "lint-openapi: FAILED" >&2; fi
exit $status
