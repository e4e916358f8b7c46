#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for dev/tests.
# Usage: scripts/kafka.sh start|stop|restart|status|env|tool <JavaClass> [args...]
# Jars come from Maven Central (fetched once into .cache/), state lives in .local/kafka.
# The three-node cluster for failover tests is scripts/kafka-cluster.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=kafka
STATE="$ROOT/.local/kafka"
TOOLS_DIR="$STATE"
source "$ROOT/scripts/kafka-common.sh"
PORT="${YADTQ_KAFKA_PORT:-9092}"
CTRL_PORT=$((PORT + 1))
BOOTSTRAP="127.0.0.1:$PORT"
NODE_ID=1

start() {
  if running_pid "$STATE" >/dev/null; then log "already running (pid $(cat "$STATE/kafka.pid")) on $BOOTSTRAP"; return 0; fi
  # A broker we don't track (e.g. pid file lost) would make readiness checks lie: refuse instead.
  if port_in_use "$PORT"; then die "port $PORT is already in use by another process"; fi
  ensure_java; fetch; write_tools_log4j
  write_node_config "$STATE" "$NODE_ID" "$PORT" "$CTRL_PORT" "$NODE_ID@127.0.0.1:$CTRL_PORT" 1 1
  [[ -f "$STATE/data/meta.properties" ]] || format_storage "$STATE" "$(new_cluster_id)"
  log "starting broker on $BOOTSTRAP (controller 127.0.0.1:$CTRL_PORT), logs: $STATE/server.log"
  local t0=$SECONDS
  launch_node "$STATE" 768m
  wait_ready "$STATE" "$BOOTSTRAP" "$NODE_ID"
  log "ready in $((SECONDS - t0))s (pid $(cat "$STATE/kafka.pid"))"
}

stop() { stop_node "$STATE"; }

case "${1:-}" in
  start|stop) if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then log "KAFKA_BOOTSTRAP is set ($KAFKA_BOOTSTRAP): using that broker, nothing to $1"; exit 0; fi; "$1" ;;
  restart) if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then log "KAFKA_BOOTSTRAP is set: not restarting an external broker"; exit 0; fi; stop; start ;;
  status)
    if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then log "external broker: $KAFKA_BOOTSTRAP"; exit 0; fi
    if pid="$(running_pid "$STATE")"; then log "running (pid $pid) on $BOOTSTRAP"; else log "not running"; exit 3; fi ;;
  env) echo "export KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-$BOOTSTRAP}" ;;
  tool) shift; tool "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|env|tool <JavaClass> [args...]" >&2; exit 2 ;;
esac
