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
# Its requests carry YADTQ_API_KEY as their bearer token
# (tools/schemathesis/schemathesis.toml), an admin key.
# With YADTQ_URL set, tests that gateway (which must check API keys), with
# YADTQ_API_KEY an admin key of it. Otherwise starts PostgreSQL and Kafka
# (unless DATABASE_URL / KAFKA_BOOTSTRAP name the user's servers, as
# scripts/test.sh), builds the binaries, starts a gateway (with a new admin
# key) and a worker in a fresh database and namespace (scripts/lib.sh's
# start_stack), and stops what it started.
# Environment: YADTQ_SCHEMATHESIS_EXAMPLES (examples per operation, default
# 100; e.g. 1000 for a longer exploratory run), YADTQ_SCHEMATHESIS_SEED
# (default 1), YADTQ_SCHEMATHESIS_TIMEOUT (seconds before the run is
# stopped as a failure, default 600: runs took 72 to 277 s on the 2-core
# machine). Extra arguments go to `schemathesis run`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$ROOT/scripts/pinned-tools.sh"
cd "$ROOT"
EXAMPLES="${YADTQ_SCHEMATHESIS_EXAMPLES:-100}"
SEED="${YADTQ_SCHEMATHESIS_SEED:-1}"
TIMEOUT="${YADTQ_SCHEMATHESIS_TIMEOUT:-600}"

cleanup() {
  stop_stack
  stop_started_services
}
trap cleanup EXIT

if [[ -n "${YADTQ_URL:-}" ]]; then
  require_api_key "schemathesis's requests"
  LOGS="$ROOT/.local/schemathesis"
else
  start_stack 1
  LOGS="$STACK_LOGS"
fi
mkdir -p "$LOGS"
venv="$(pinned_venv tools/schemathesis/requirements.txt "$ROOT/.cache/schemathesis")"
echo "== schemathesis $("$venv/bin/schemathesis" --version | sed 's/.*version //') against $YADTQ_URL (seed $SEED, $EXAMPLES examples per operation)"
t0=$SECONDS
status=0
# tools/schemathesis/hooks.py: the rules of a submission JSON Schema cannot
# state; tools/schemathesis/schemathesis.toml: check settings and the API key.
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
