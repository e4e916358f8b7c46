#!/usr/bin/env bash
# Runs the SDKs' tests against a live stack: clients/python with pytest (the
# package installed from its pyproject.toml, as a user would), and
# clients/typescript compiled with tsc and run with `node --test`; their tools
# are the pinned ones (scripts/pinned-tools.sh, cached under .cache/clients/).
# With YADTQ_URL set, the tests use that gateway, which must declare the
# queues sdk_py and sdk_ts and have a worker serving them. Otherwise this
# starts PostgreSQL and Kafka (unless DATABASE_URL / KAFKA_BOOTSTRAP name the
# user's servers, as scripts/test.sh), builds the binaries, starts a gateway
# and a worker in a fresh database and namespace, and stops what it started.
# Arguments: the SDKs to test, `python` and/or `typescript` (default both).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pinned-tools.sh"
cd "$ROOT"
if [[ $# -eq 0 ]]; then set -- python typescript; fi
CACHE="$ROOT/.cache/clients"
QUEUES=default,sdk_py,sdk_ts

PIDS=()
TMP="$(mktemp -d)"
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_started_services
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# True when the gateway is ready and a live worker owns partitions of every queue.
stack_ready() {
  curl -fsS "$YADTQ_URL/readyz" >/dev/null 2>&1 &&
    curl -fsS "$YADTQ_URL/workers?alive=true" 2>/dev/null | python3 -c '
import json, sys
owned = {t for w in json.load(sys.stdin)["workers"] for t, parts in w["partitions"].items() if parts}
sys.exit(0 if len(owned) == len(sys.argv[1].split(",")) else 1)' "$QUEUES"
}

start_stack() {
  require_cargo
  start_services
  cargo build --workspace --bins  # the same build as scripts/test.sh: nothing to do after it
  export YADTQ_NAMESPACE="sdk-$(date +%s)-$$" YADTQ_QUEUES="$QUEUES"
  psql "$DATABASE_URL" -X -q -c "CREATE DATABASE \"$YADTQ_NAMESPACE\"" >/dev/null
  export DATABASE_URL="${DATABASE_URL%/*}/$YADTQ_NAMESPACE"
  local logs="$ROOT/.local/clients/$YADTQ_NAMESPACE" port
  mkdir -p "$logs"
  port="$(free_port)"
  export YADTQ_URL="http://127.0.0.1:$port"
  target/debug/yadtq-gateway serve --listen "127.0.0.1:$port" >"$logs/gateway.log" 2>&1 &
  PIDS+=($!)
  target/debug/yadtq-worker --concurrency 8 >"$logs/worker.log" 2>&1 &
  PIDS+=($!)
  local t0=$SECONDS
  until stack_ready; do
    if (( SECONDS - t0 > 90 )); then
      tail -n 20 "$logs"/*.log >&2
      echo "test-clients: the gateway and worker were not ready after 90 s (logs: $logs)" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "test-clients: gateway $YADTQ_URL and a worker up in $((SECONDS - t0)) s (logs: $logs)"
}

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

if [[ -z "${YADTQ_URL:-}" ]]; then start_stack; fi
for sdk in "$@"; do
  t0=$SECONDS
  echo "== $sdk SDK against $YADTQ_URL"
  "test_$sdk"
  echo "test-clients: $sdk SDK tests took $((SECONDS - t0)) s"
done
