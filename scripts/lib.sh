# Shared by scripts/test.sh and scripts/demo.sh: start PostgreSQL and Kafka
# (unless DATABASE_URL / KAFKA_BOOTSTRAP name servers of the user's) and stop,
# on exit, whichever of them this run started.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

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
