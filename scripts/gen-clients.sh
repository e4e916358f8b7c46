#!/usr/bin/env bash
# Generates the SDKs under clients/ from the committed openapi/openapi.json:
#   - clients/python/yadtq_client/: openapi-python-client (config
#     clients/python/generator.yaml), pinned with every dependency in
#     clients/python/requirements-dev.txt, in a venv under .cache/clients/;
#   - clients/typescript/src/schema.ts: openapi-typescript (types only; the
#     requests are made by openapi-fetch at run time), pinned with TypeScript
#     by clients/typescript/package-lock.json, installed with `npm ci` under
#     .cache/clients/.
# The hand-written layers (clients/python/yadtq/, clients/typescript/src/*.ts)
# are never touched.
# `--check` generates into a temporary directory instead and fails, showing
# the difference, when the committed code is stale (CI runs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/pinned-tools.sh"
cd "$ROOT"
SPEC=openapi/openapi.json
PY=clients/python
TS=clients/typescript

venv="$(pinned_venv "$PY/requirements-dev.txt" "$ROOT/.cache/clients")"
npm_dir="$(pinned_npm "$TS" "$ROOT/.cache/clients")"

# generate OUT: writes OUT/python/yadtq_client and OUT/typescript/src/schema.ts.
generate() {
  local out=$1
  mkdir -p "$out/python" "$out/typescript/src"
  rm -rf "$out/python/yadtq_client"
  # The post hooks run the venv's ruff.
  PATH="$venv/bin:$PATH" openapi-python-client generate --path "$SPEC" --meta none \
    --config "$PY/generator.yaml" --output-path "$out/python/yadtq_client" --fail-on-warning >/dev/null
  "$npm_dir/node_modules/.bin/openapi-typescript" "$SPEC" --output "$out/typescript/src/schema.ts" >/dev/null
}

if [[ "${1:-}" == --check ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  status=0
  diff -ru "$PY/yadtq_client" "$tmp/python/yadtq_client" -x __pycache__ || status=1
  diff -u "$TS/src/schema.ts" "$tmp/typescript/src/schema.ts" || status=1
  if [[ $status != 0 ]]; then
    echo "gen-clients: clients/ is stale against $SPEC: run scripts/gen-clients.sh and commit the result" >&2
    exit 1
  fi
  echo "gen-clients: clients/ is up to date with $SPEC"
else
  generate clients
  echo "gen-clients: generated $PY/yadtq_client and $TS/src/schema.ts from $SPEC"
fi
