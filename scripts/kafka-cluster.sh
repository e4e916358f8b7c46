#!/usr/bin/env bash
# Local three-node Apache Kafka cluster for the failover test
# (tests/tests/cluster.rs): KRaft, each node a combined broker + controller,
# a three-voter controller quorum; replication factor 3 and
# min.insync.replicas=2 for the internal topics and as the broker defaults.
# Usage: scripts/kafka-cluster.sh start|stop|status|env|controller|kill N|restart N|tool <JavaClass> [args...]
#   kill N     SIGKILL node N (1, 2 or 3), as a crash would
#   restart N  start node N again (SIGTERM first if it runs) and wait until
#              it is back among the cluster's live brokers
#   env        prints `export YADTQ_KAFKA_CLUSTER=<bootstrap servers>`
#   controller prints the node id of the active controller
# Node N (its broker id too) listens on BASE + 2(N-1) for clients and the
# next port for the controller quorum; BASE is YADTQ_KAFKA_CLUSTER_PORT
# (default 9292, apart from scripts/kafka.sh's 9092). Heap per node:
# YADTQ_KAFKA_CLUSTER_HEAP (default 512m). How long a crashed broker stays in
# the ISRs before the controller fences it: YADTQ_KAFKA_CLUSTER_BROKER_SESSION_MS
# (broker.session.timeout.ms, default 4000). Jars as scripts/kafka.sh; state in
# .local/kafka-cluster/node-N (delete the folder for a fresh cluster).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=kafka-cluster
STATE="$ROOT/.local/kafka-cluster"
TOOLS_DIR="$STATE"
source "$ROOT/scripts/kafka-common.sh"
BASE="${YADTQ_KAFKA_CLUSTER_PORT:-9292}"
HEAP="${YADTQ_KAFKA_CLUSTER_HEAP:-512m}"
BROKER_SESSION_MS="${YADTQ_KAFKA_CLUSTER_BROKER_SESSION_MS:-4000}"
NODES=(1 2 3)

node_dir() { echo "$STATE/node-$1"; }
port() { echo $((BASE + 2 * ($1 - 1))); }
ctrl_port() { echo $(($(port "$1") + 1)); }
# Comma-separated "<prefix><host:port>" of every node, e.g. voters: "1@127.0.0.1:9293,...".
each_node() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$("$1" "$n")"); done
  (IFS=,; echo "${out[*]}")
}
client_addr() { echo "127.0.0.1:$(port "$1")"; }
voter() { echo "$1@127.0.0.1:$(ctrl_port "$1")"; }
bootstrap() { each_node client_addr; }
all_dirs() { local n; for n in "${NODES[@]}"; do node_dir "$n"; done | tr '\n' ' '; }

check_node() { [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"; }

# Writes node N's configuration, formats its storage once, and starts it.
launch() {
  local n=$1 dir; dir="$(node_dir "$1")"
  # A broker we don't track would make readiness checks lie: refuse instead.
  if port_in_use "$(port "$n")"; then die "port $(port "$n") (node $n) is already in use by another process"; fi
  write_node_config "$dir" "$n" "$(port "$n")" "$(ctrl_port "$n")" "$(each_node voter)" 3 2
  # Until the controller fences a crashed broker it stays in every ISR, so no
  # acks=all write completes, the group coordinator's included: consumers then
  # time out of the group unless the broker is fenced before their session
  # (yadtq's 6 s) ends. Kafka's default is 9 s; see docs/deployment.md.
  cat >> "$dir/server.properties" <<PROPS
broker.session.timeout.ms=$BROKER_SESSION_MS
broker.heartbeat.interval.ms=1000
PROPS
  format_storage "$dir" "$(cat "$STATE/cluster.id")"
  log "starting node $n on $(client_addr "$n") (controller 127.0.0.1:$(ctrl_port "$n")), logs: $dir/server.log"
  launch_node "$dir" "$HEAP"
}

start() {
  ensure_java; fetch; write_tools_log4j
  if [[ ! -s "$STATE/cluster.id" ]]; then new_cluster_id > "$STATE/cluster.id.tmp"; mv "$STATE/cluster.id.tmp" "$STATE/cluster.id"; fi
  local n t0=$SECONDS
  for n in "${NODES[@]}"; do
    if running_pid "$(node_dir "$n")" >/dev/null; then log "node $n already running"; else launch "$n"; fi
  done
  # The controllers need a majority of the quorum to elect a leader, so the
  # nodes start together and are waited for together.
  wait_ready "$(all_dirs)" "$(bootstrap)" "${NODES[@]}"
  log "ready in $((SECONDS - t0))s: $(bootstrap)"
}

stop() {
  local n
  # All at once: stopped one by one, the last nodes would wait for a quorum
  # that is already gone.
  for n in "${NODES[@]}"; do stop_node "$(node_dir "$n")" & done
  wait
}

status() {
  local n pid down=0
  for n in "${NODES[@]}"; do
    if pid="$(running_pid "$(node_dir "$n")")"; then log "node $n running (pid $pid) on $(client_addr "$n")"
    else log "node $n not running"; down=1; fi
  done
  return $((down * 3))
}

kill_node() {
  check_node "${1:-}"
  running_pid "$(node_dir "$1")" >/dev/null || die "node $1 is not running"
  stop_node "$(node_dir "$1")" KILL
}

restart_node() {
  check_node "${1:-}"
  local t0=$SECONDS
  stop_node "$(node_dir "$1")"
  launch "$1"
  wait_ready "$(node_dir "$1")" "$(client_addr "$1")" "$1"
  log "node $1 back in $((SECONDS - t0))s"
}

# The node id of the active controller (the KRaft quorum's leader), from the
# quorum state each running voter keeps on disk: the highest epoch wins, as
# a voter that missed an election still names an old leader.
controller() {
  local n file epoch id best=-1 leader=""
  for n in "${NODES[@]}"; do
    running_pid "$(node_dir "$n")" >/dev/null || continue
    file="$(node_dir "$n")/data/__cluster_metadata-0/quorum-state"
    [[ -f "$file" ]] || continue
    epoch="$(sed -n 's/.*"leaderEpoch":\([0-9-]*\).*/\1/p' "$file")"
    id="$(sed -n 's/.*"leaderId":\([0-9-]*\).*/\1/p' "$file")"
    if [[ -n "$epoch" && "$epoch" -gt "$best" ]]; then best=$epoch; leader=$id; fi
  done
  [[ -n "$leader" && "$leader" != -1 ]] || die "no controller elected"
  echo "$leader"
}

case "${1:-}" in
  start|stop|status|controller) "$1" ;;
  env) echo "export YADTQ_KAFKA_CLUSTER=$(bootstrap)" ;;
  kill) kill_node "${2:-}" ;;
  restart) restart_node "${2:-}" ;;
  tool) shift; tool "$@" ;;
  *) echo "usage: $0 start|stop|status|env|controller|kill N|restart N|tool <JavaClass> [args...]" >&2; exit 2 ;;
esac
