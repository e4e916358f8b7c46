#!/usr/bin/env bash
# Property-based contract test of the live gateway: schemathesis (pinned with
# every dependency in tools/schemathesis/requirements.txt, installed once into
# .cache/schemathesis/ by scripts/pinned-tools.sh) generates requests from
# the gateway's own /openapi.json and checks every answer against it, with
# all checks and every phase (examples, coverage, fuzzing, and stateful
# sequences along the document's links: submit, then get, cancel, retry,
# attempts, events). Deterministic: a fixed seed, a bounded number of
# examples per operation, one worker, no example database. Zero failures
# required.
# With YADTQ_URL set, tests that gateway. Otherwise starts PostgreSQL and
# Kafka (unless DATABASE_URL / KAFKA_BOOTSTRAP name the user's servers, as
# scripts/test.sh), builds the binaries, starts a gateway and a worker in a
# fresh database and namespace, and stops what it started.
# Environment: YADTQ_SCHEMATHESIS_EXAMPLES (examples per operation, default
# 100; e.g. 1000 for a longer exploratory run), YADTQ_SCHEMATHESIS_SEED
# (default 1), YADTQ_SCHEMATHESIS_TIMEOUT (seconds before the run is
# stopped as a failure, default 300). Extra arguments go to `schemathesis run`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pinned-tools.sh"
cd "$ROOT"
EXAMPLES="${YADTQ_SCHEMATHESIS_EXAMPLES:-100}"
SEED="${YADTQ_SCHEMATHESIS_SEED:-1}"
TIMEOUT="${YADTQ_SCHEMATHESIS_TIMEOUT:-300}"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_started_services
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# True when the gateway is ready and a live worker owns partitions.
stack_ready() {
  curl -fsS "$YADTQ_URL/readyz" >/dev/null 2>&1 &&
    curl -fsS "$YADTQ_URL/workers?alive=true" 2>/dev/null |
    python3 -c 'import json, sys; sys.exit(0 if any(any(p.values()) for p in (w["partitions"] for w in json.load(sys.stdin)["workers"])) else 1)'
}

start_stack() {
  require_cargo
  start_services
  cargo build --workspace --bins # the same build as scripts/test.sh: nothing to do after it
  export YADTQ_NAMESPACE="schema-$(date +%s)-$$"
  psql "$DATABASE_URL" -X -q -c "CREATE DATABASE \"$YADTQ_NAMESPACE\"" >/dev/null
  export DATABASE_URL="${DATABASE_URL%/*}/$YADTQ_NAMESPACE"
  LOGS="$ROOT/.local/schemathesis/$YADTQ_NAMESPACE"
  mkdir -p "$LOGS"
  local port t0=$SECONDS
  port="$(free_port)"
  export YADTQ_URL="http://127.0.0.1:$port"
  "${CARGO_TARGET_DIR:-target}/debug/yadtq-gateway" serve --listen "127.0.0.1:$port" >"$LOGS/gateway.log" 2>&1 &
  PIDS+=($!)
  "${CARGO_TARGET_DIR:-target}/debug/yadtq-worker" --concurrency 8 >"$LOGS/worker.log" 2>&1 &
  PIDS+=($!)
  until stack_ready; do
    if ((SECONDS - t0 > 90)); then
      tail -n 20 "$LOGS"/*.log >&2
      echo "schemathesis: the gateway and worker were not ready after 90 s (logs: $LOGS)" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "schemathesis: gateway $YADTQ_URL and a worker up in $((SECONDS - t0)) s (logs: $LOGS)"
}

LOGS="$ROOT/.local/schemathesis"
if [[ -z "${YADTQ_URL:-}" ]]; then start_stack; fi
mkdir -p "$LOGS"
venv="$(pinned_venv tools/schemathesis/requirements.txt "$ROOT/.cache/schemathesis")"
echo "== schemathesis $("$venv/bin/schemathesis" --version | sed 's/.*version //') against $YADTQ_URL (seed $SEED, $EXAMPLES examples per operation)"
t0=$SECONDS
status=0
# tools/schemathesis/hooks.py: the rules of a submission JSON Schema cannot
# state; tools/schemathesis/schemathesis.toml: check settings.
# Run from the logs directory, where it keeps its crash cache for `st replay`.
# A long-poll (`GET /tasks/{id}?wait=`) answers after up to 60 s when the task
# stays unfinished (schemathesis's own response time limit, 10 s, flagged
# `wait=58` on a scheduled task with seed 2): the limit is the longest wait
# plus a margin.
(cd "$LOGS" && PYTHONPATH="$ROOT/tools/schemathesis" SCHEMATHESIS_HOOKS=hooks PYTHONDONTWRITEBYTECODE=1 \
  timeout --signal=INT --kill-after=10 "$TIMEOUT" \
  "$venv/bin/schemathesis" --config-file "$ROOT/tools/schemathesis/schemathesis.toml" run "$YADTQ_URL/openapi.json" --url "$YADTQ_URL" \
  --checks all --phases examples,coverage,fuzzing,stateful \
  --seed "$SEED" --max-examples "$EXAMPLES" --workers 1 --generation-database none \
  --request-timeout 70 --max-response-time 65 --no-color \
  --report junit --report-dir "$LOGS" "$@") || status=$?
echo "schemathesis: took $((SECONDS - t0)) s (report and \`st replay\` cache: $LOGS)"
if [[ $status == 124 ]]; then echo "schemathesis: stopped after $TIMEOUT s" >&2; fi
if [[ $status != 0 ]]; then echo "schemathesis: FAILED" >&2; fi
exit $status
