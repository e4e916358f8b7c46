# Sourced, never run. Shared by the scripts under scripts/:
#   apt_install PKG...        Debian packages, as root (sudo otherwise); every
#                             script that installs something uses it;
#   require_cargo             cargo on PATH (~/.cargo/bin too), or a clear error;
#   start_services / start_service NAME / stop_started_services
#                             PostgreSQL and Kafka (unless DATABASE_URL /
#                             KAFKA_BOOTSTRAP name servers of the user's), and
#                             stopping, on exit, whichever of them a run started.
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
