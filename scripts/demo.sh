#!/usr/bin/env bash
# The main job on one machine: PostgreSQL, Apache Kafka, a gateway and two
# workers; submits the seed's example tasks and a few hundred more over HTTP
# with a new API key, then prints their results and the worker roster read
# from the HTTP API, and the key with curl lines to try.
# Environment: YADTQ_DEMO_PORT (gateway port, default 8080), YADTQ_DEMO_TASKS
# (extra tasks, default 300), YADTQ_DEMO_KEEP=1 (keep the gateway and workers
# running after the summary, until Ctrl-C); DATABASE_URL / KAFKA_BOOTSTRAP to
# use your servers.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
PORT="${YADTQ_DEMO_PORT:-8080}"

cleanup() {
  stop_stack
  stop_started_services
}
trap cleanup EXIT

echo "[demo] building yadtq, starting PostgreSQL, Kafka, a gateway and two workers"
# Both workers must own partitions before the burst below, so it is shared
# between them rather than drained by whichever joined first: start_stack
# waits for that (GET /workers lists the partitions each worker owns).
STACK_QUIET_BUILD=1 start_stack 2 "$PORT"

python3 "$ROOT/scripts/demo_client.py" "$YADTQ_URL" "${YADTQ_DEMO_TASKS:-300}"

cat <<TRY

The demo's API key (an admin key of tenant \`default\`; every route but
/healthz, /readyz and /openapi.json needs one; it scrapes /metrics too):

  export YADTQ_API_KEY=$YADTQ_API_KEY

and the curl lines to try with it (the yadtq CLI reads YADTQ_API_KEY too):

  curl -si $YADTQ_URL/tasks -H "Authorization: Bearer \$YADTQ_API_KEY" -H 'Content-Type: application/json' -d '{"task": "multiply", "args": [4, 5]}'
  curl -s $YADTQ_URL/tasks/12345abc -H "Authorization: Bearer \$YADTQ_API_KEY"
  curl -s '$YADTQ_URL/workers?alive=true' -H "Authorization: Bearer \$YADTQ_API_KEY"
TRY
if [[ "${YADTQ_DEMO_KEEP:-0}" == 1 ]]; then
  echo
  echo "[demo] the gateway ($YADTQ_URL) and workers keep running until Ctrl-C (logs: $STACK_LOGS)"
  # Ctrl-C reaches this shell only (background processes of a script ignore
  # SIGINT): it exits, and the EXIT trap stops everything. So does a process
  # that exits on its own.
  trap 'exit 130' INT TERM
  wait -n "${STACK_PIDS[@]}" || true
else
  echo
  echo "[demo] stopping: the gateway, the workers and the servers this run started (YADTQ_DEMO_KEEP=1 keeps them up)"
fi
