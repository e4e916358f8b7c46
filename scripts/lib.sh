# Sourced, never run. Shared by the scripts under scripts/:
#   apt_install PKG...        Debian packages, as root (sudo otherwise); every
#                             script that installs something uses it;
#   require_cargo             cargo on PATH (~/.cargo/bin too), or a clear error;
#   start_services / start_service NAME / stop_started_services
#                             PostgreSQL and Kafka (unless DATABASE_URL /
#                             KAFKA_BOOTSTRAP name servers of the user's), and
#                             stopping, on exit, whichever of them a run started;
#   start_stack WORKERS [PORT] / stop_stack
#                             a gateway with a fresh admin API key and WORKERS
#                             workers, as scripts/test-clients.sh,
#                             scripts/schemathesis.sh and scripts/demo.sh run them;
#   require_api_key WHAT      with YADTQ_URL set by the user, a clear error
#                             unless YADTQ_API_KEY holds the key to use.
# Sourced once: a second `source` (postgres.sh, prometheus.sh, kafka-common.sh
# and pinned-tools.sh source it too) would forget what a run started.
[[ -n "${YADTQ_LIB_SOURCED:-}" ]] && return 0
YADTQ_LIB_SOURCED=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The prefix of this file's messages: the running script's name.
lib_tag() { basename "$0" .sh; }

as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

# apt_install [APT-GET OPTION...] PKG...: installs Debian packages quietly.
apt_install() {
  echo "[$(lib_tag)] installing $* with apt-get" >&2
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

require_cargo() {
  if ! command -v cargo >/dev/null; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
  # rdkafka's ssl feature (Kafka over TLS) builds librdkafka against the
  # system's OpenSSL, found with pkg-config.
  if command -v dpkg >/dev/null && ! dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
    echo "installing libssl-dev and pkg-config with apt-get (librdkafka's TLS)" >&2
    local sudo=(); [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev pkg-config >/dev/null
  fi
}

STARTED_SERVICES=()
stop_started_services() {
  local s
  # Without the exported URLs, which make the scripts leave servers alone.
  for s in "${STARTED_SERVICES[@]}"; do env -u DATABASE_URL -u KAFKA_BOOTSTRAP -u YADTQ_PROMETHEUS_URL "$ROOT/scripts/$s.sh" stop || true; done
}

# start_service NAME: starts scripts/NAME.sh's server (noting it for
# stop_started_services when it was not running) and evals its `env`.
start_service() {
  if ! "$ROOT/scripts/$1.sh" status >/dev/null 2>&1; then STARTED_SERVICES+=("$1"); fi
  "$ROOT/scripts/$1.sh" start
  eval "$("$ROOT/scripts/$1.sh" env)"
}

start_services() {
  start_service postgres
  start_service kafka
  export DATABASE_URL KAFKA_BOOTSTRAP
}

# require_api_key WHAT: exits with a message naming WHAT (e.g. "the SDKs'
# tests") unless YADTQ_API_KEY is set, for a run against the user's gateway.
require_api_key() {
  if [[ -z "${YADTQ_API_KEY:-}" ]]; then
    echo "[$(lib_tag)] YADTQ_URL is set ($YADTQ_URL), so $1 use that gateway, but YADTQ_API_KEY is not:" \
      "set it to an admin key of that gateway (\`yadtq-gateway keys create --scopes admin\` against its database)," \
      "or unset YADTQ_URL to start a gateway of this run's own" >&2
    exit 1
  fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# True when the gateway at YADTQ_URL is ready and at least $1 live workers own
# partitions, which between them cover every declared queue (YADTQ_QUEUES).
stack_ready() {
  curl -fsS "$YADTQ_URL/readyz" >/dev/null 2>&1 &&
    curl -fsS -H "Authorization: Bearer $YADTQ_API_KEY" "$YADTQ_URL/workers?alive=true" 2>/dev/null | python3 -c '
import json, sys
owning = [w for w in json.load(sys.stdin)["workers"] if any(w["partitions"].values())]
topics = {t for w in owning for t, parts in w["partitions"].items() if parts}
sys.exit(0 if len(owning) >= int(sys.argv[1]) and len(topics) >= len(sys.argv[2].split(",")) else 1)' \
      "$1" "${YADTQ_QUEUES:-default}"
}

STACK_PIDS=()
# start_stack WORKERS [PORT]: starts PostgreSQL and Kafka (start_services),
# builds the binaries (the same build as scripts/test.sh: nothing to do after
# it), and runs a gateway on 127.0.0.1:PORT (a free port when absent) and
# WORKERS workers from them, in a fresh database and Kafka namespace
# (YADTQ_NAMESPACE, named after the script and the time) with the queues of
# YADTQ_QUEUES (default `default`). The gateway stores a new token as an admin
# key at start (YADTQ_BOOTSTRAP_ADMIN_KEY). Waits, 90 s at most, until the
# gateway is ready and the workers own partitions of every queue. Exports
# YADTQ_URL, YADTQ_API_KEY (the admin key), YADTQ_NAMESPACE and DATABASE_URL
# (the new database); STACK_LOGS is the directory of the processes' logs.
# stop_stack stops them.
start_stack() {
  local workers=$1 port=${2:-} tag target i t0
  tag="$(lib_tag)"
  require_cargo
  start_services
  cargo build --workspace --bins ${STACK_QUIET_BUILD:+--quiet}
  target="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  export YADTQ_NAMESPACE="$tag-$(date +%s)-$$"
  psql "$DATABASE_URL" -X -q -c "CREATE DATABASE \"$YADTQ_NAMESPACE\"" >/dev/null
  export DATABASE_URL="${DATABASE_URL%/*}/$YADTQ_NAMESPACE"
  STACK_LOGS="$ROOT/.local/$tag/$YADTQ_NAMESPACE"
  mkdir -p "$STACK_LOGS"
  [[ -n "$port" ]] || port="$(free_port)"
  export YADTQ_URL="http://127.0.0.1:$port"
  YADTQ_API_KEY="$("$target/yadtq-gateway" keys token)"
  export YADTQ_API_KEY
  YADTQ_BOOTSTRAP_ADMIN_KEY="$YADTQ_API_KEY" \
    "$target/yadtq-gateway" serve --listen "127.0.0.1:$port" >"$STACK_LOGS/gateway.log" 2>&1 &
  STACK_PIDS+=($!)
  for ((i = 1; i <= workers; i++)); do
    "$target/yadtq-worker" --concurrency 8 >"$STACK_LOGS/worker-$i.log" 2>&1 &
    STACK_PIDS+=($!)
  done
  t0=$SECONDS
  until stack_ready "$workers"; do
    if ((SECONDS - t0 > 90)); then
      tail -n 20 "$STACK_LOGS"/*.log >&2
      echo "[$tag] the gateway and $workers worker(s) were not ready after 90 s (logs: $STACK_LOGS)" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "[$tag] gateway $YADTQ_URL and $workers worker(s) up in $((SECONDS - t0)) s (logs: $STACK_LOGS)"
}

# Stops what start_stack started (SIGTERM, then waits for each).
stop_stack() {
  local p
  for p in "${STACK_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${STACK_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
