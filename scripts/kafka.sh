#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for dev/tests.
# Usage: scripts/kafka.sh start|stop|restart|status|env|tool <JavaClass> [args...]
# Jars come from Maven Central (fetched once into .cache/), state lives in .local/kafka.
# The three-node cluster for failover tests is scripts/kafka-cluster.sh.
# With YADTQ_KAFKA_SASL_SSL=1, a secured broker in .local/kafka-secured
# instead (what scripts/secured.sh starts): its one client listener is
# SASL_SSL (TLS with the certificate of scripts/certs.sh, SCRAM-SHA-512 or
# -256), so plaintext clients are refused; the KRaft controller listener
# stays plaintext on loopback. Users (created at format time): yadtq
# (password YADTQ_KAFKA_SASL_PASSWORD, default yadtq-secret) and the broker's
# own. `env` then prints the yadtq settings (YADTQ_KAFKA_SECURITY_PROTOCOL,
# ...); the tools' client settings are in .local/kafka-secured/client.properties
# (`tool ... --command-config` that file). Delete the folder to change passwords.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOG_TAG=kafka
SECURED="${YADTQ_KAFKA_SASL_SSL:-0}"
if [[ "$SECURED" == 1 ]]; then STATE="$ROOT/.local/kafka-secured"; LISTENER=SASL_SSL; else STATE="$ROOT/.local/kafka"; fi
TOOLS_DIR="$STATE"
source "$ROOT/scripts/kafka-common.sh"
PORT="${YADTQ_KAFKA_PORT:-9092}"
CTRL_PORT=$((PORT + 1))
BOOTSTRAP="127.0.0.1:$PORT"
NODE_ID=1
SASL_USER=yadtq
SASL_PASSWORD="${YADTQ_KAFKA_SASL_PASSWORD:-yadtq-secret}"
BROKER_PASSWORD=broker-secret
P12_PASSWORD="${YADTQ_CERTS_P12_PASSWORD:-yadtq-keystore}"
if [[ "$SECURED" == 1 ]]; then
  CERTS="$(bash "$ROOT/scripts/certs.sh" dir)"
  CLIENT_PROPERTIES="$STATE/client.properties"
fi

scram() { echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$2\";"; }

# The SASL_SSL listener's settings, appended to server.properties, and the
# tools' client settings. The broker talks to itself over the same listener
# as user broker.
secure_node() {
  bash "$ROOT/scripts/certs.sh" make
  cat >> "$STATE/server.properties" <<PROPS
ssl.keystore.type=PKCS12
ssl.keystore.location=$CERTS/server.p12
ssl.keystore.password=$P12_PASSWORD
ssl.key.password=$P12_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
ssl.client.auth=none
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(scram broker "$BROKER_PASSWORD")
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$(scram broker "$BROKER_PASSWORD")
PROPS
  cat > "$CLIENT_PROPERTIES" <<PROPS
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(scram "$SASL_USER" "$SASL_PASSWORD")
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
PROPS
  chmod 600 "$STATE/server.properties" "$CLIENT_PROPERTIES"
}

# SCRAM credentials (both mechanisms) for the broker and yadtq, stored in the
# cluster metadata when the storage is formatted.
scram_users() {
  local m u
  for m in SCRAM-SHA-512 SCRAM-SHA-256; do
    for u in "broker:$BROKER_PASSWORD" "$SASL_USER:$SASL_PASSWORD"; do
      printf '%s\n' --add-scram "$m=[name=${u%%:*},password=${u#*:}]"
    done
  done
}

start() {
  if running_pid "$STATE" >/dev/null; then log "already running (pid $(cat "$STATE/kafka.pid")) on $BOOTSTRAP"; return 0; fi
  # A broker we don't track (e.g. pid file lost) would make readiness checks lie: refuse instead.
  if port_in_use "$PORT"; then die "port $PORT is already in use by another process"; fi
  ensure_java; fetch; write_tools_log4j
  write_node_config "$STATE" "$NODE_ID" "$PORT" "$CTRL_PORT" "$NODE_ID@127.0.0.1:$CTRL_PORT" 1 1
  local format=()
  if [[ "$SECURED" == 1 ]]; then
    secure_node
    mapfile -t format < <(scram_users)
  fi
  [[ -f "$STATE/data/meta.properties" ]] || format_storage "$STATE" "$(new_cluster_id)" "${format[@]}"
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
  env)
    echo "export KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-$BOOTSTRAP}"
    if [[ "$SECURED" == 1 ]]; then
      printf 'export %s=%q\n' YADTQ_KAFKA_SECURITY_PROTOCOL sasl_ssl YADTQ_KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
        YADTQ_KAFKA_SASL_USERNAME "$SASL_USER" YADTQ_KAFKA_SASL_PASSWORD "$SASL_PASSWORD" YADTQ_KAFKA_SSL_CA "$CERTS/ca.pem"
    fi ;;
  tool) shift; tool "$@" ;;
  *) echo "usage: $0 start|stop|restart|status|env|tool <JavaClass> [args...]" >&2; exit 2 ;;
esac
