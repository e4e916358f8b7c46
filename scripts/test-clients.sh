#!/usr/bin/env bash
# Runs the SDKs' tests against a live stack: clients/python with pytest (the
# package installed from its pyproject.toml, as a user would), and
# clients/typescript compiled with tsc and run with `node --test`; their tools
# are the pinned ones (scripts/pinned-tools.sh, cached under .cache/clients/).
# With YADTQ_URL set, the tests use that gateway, which must declare the
# queues sdk_py and sdk_ts, have a worker serving them and check API keys,
# with YADTQ_API_KEY an admin key of it. Otherwise this starts PostgreSQL and
# Kafka (unless DATABASE_URL / KAFKA_BOOTSTRAP name the user's servers, as
# scripts/test.sh), builds the binaries, starts a gateway (with a new admin
# key, exported as YADTQ_API_KEY for the tests) and a worker in a fresh
# database and namespace (scripts/lib.sh's start_stack), and stops what it
# started.
# Arguments: the SDKs to test, `python` and/or `typescript` (default both).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pinned-tools.sh"
cd "$ROOT"
if [[ $# -eq 0 ]]; then set -- python typescript; fi
CACHE="$ROOT/.cache/clients"
QUEUES=default,sdk_py,sdk_ts

TMP="$(mktemp -d)"
cleanup() {
  stop_stack
  stop_started_services
  rm -rf "$TMP"
}
trap cleanup EXIT

test_python() {
  local venv
  venv="$(pinned_venv clients/python/requirements-dev.txt "$CACHE")"
  # The hand-written code's lint and format (settings in its pyproject.toml).
  "$venv/bin/ruff" check --no-cache --quiet clients/python
  "$venv/bin/ruff" format --check --no-cache --quiet clients/python
  # Installed from a copy, so the build leaves nothing in the tree.
  cp -r clients/python "$TMP/python-src"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-build-isolation --no-index \
    --target "$TMP/site" "$TMP/python-src"
  (cd "$TMP" && PYTHONPATH="$TMP/site" YADTQ_SDK_QUEUE=sdk_py \
    "$venv/bin/python" -m pytest -p no:cacheprovider -q "$ROOT/clients/python/tests")
}

test_typescript() {
  local npm_dir
  npm_dir="$(pinned_npm clients/typescript "$CACHE")"
  ln -sfn "$npm_dir/node_modules" clients/typescript/node_modules
  rm -rf clients/typescript/build
  (cd clients/typescript && node_modules/.bin/tsc -p . && YADTQ_SDK_QUEUE=sdk_ts node --test build/test/*.test.js)
}

if [[ -n "${YADTQ_URL:-}" ]]; then
  require_api_key "the SDKs' tests"
else
  export YADTQ_QUEUES="$QUEUES"
  start_stack 1
fi
for sdk in "$@"; do
  t0=$SECONDS
  echo "== $sdk SDK against $YADTQ_URL"
  "test_$sdk"
  echo "test-clients: $sdk SDK tests took $((SECONDS - t0)) s"
done
