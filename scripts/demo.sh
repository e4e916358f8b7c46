#!/usr/bin/env bash
# The main job on one machine: PostgreSQL, Apache Kafka, a gateway and two
# workers; submits the seed's example tasks and a few hundred more over HTTP,
# then prints their results and the worker roster read from the HTTP API.
# Environment: YADTQ_DEMO_PORT (gateway port, default 8080), YADTQ_DEMO_TASKS
# (extra tasks, default 300); DATABASE_URL / KAFKA_BOOTSTRAP to use your servers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
require_cargo
PORT="${YADTQ_DEMO_PORT:-8080}"
RUN="$ROOT/.local/demo"
mkdir -p "$RUN"

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_started_services
}
trap cleanup EXIT
start_services

echo "[demo] building yadtq"
cargo build --quiet --bins

# A fresh database and namespace per run, so earlier runs never show up here.
export YADTQ_NAMESPACE="demo-$(date +%s)"
psql "$DATABASE_URL" -X -q -c "CREATE DATABASE \"$YADTQ_NAMESPACE\"" >/dev/null
export DATABASE_URL="${DATABASE_URL%/*}/$YADTQ_NAMESPACE"

target/debug/yadtq-gateway serve --listen "127.0.0.1:$PORT" >"$RUN/gateway.log" 2>&1 &
PIDS+=($!)
for i in 1 2; do
  target/debug/yadtq-worker --concurrency 8 >"$RUN/worker-$i.log" 2>&1 &
  PIDS+=($!)
done
echo "[demo] gateway on http://127.0.0.1:$PORT, two workers; logs in $RUN"
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.3
done
# Let both workers join the consumer group and own partitions, so the burst
# below is shared between them rather than drained by whichever joined first.
# GET /workers lists the partitions each worker owns.
owning() {
  curl -fsS "http://127.0.0.1:$PORT/workers?alive=true" 2>/dev/null |
    python3 -c 'import json,sys; print(sum(1 for w in json.load(sys.stdin)["workers"] if w["partitions"]))' 2>/dev/null || echo 0
}
for _ in $(seq 1 120); do
  [[ "$(owning)" == 2 ]] && break
  sleep 0.5
done

python3 "$ROOT/scripts/demo_client.py" "http://127.0.0.1:$PORT" "${YADTQ_DEMO_TASKS:-300}"
