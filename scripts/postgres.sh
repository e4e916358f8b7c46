#!/usr/bin/env bash
# Local PostgreSQL for dev/tests: a private cluster in .local/postgres (not the system one).
# Usage: scripts/postgres.sh start|stop|status|env     (eval "$(scripts/postgres.sh env)")
# With YADTQ_PG_TLS=1, a secured cluster in .local/postgres-tls instead (what
# scripts/secured.sh starts): TCP only over TLS (ssl=on, `hostssl` lines alone
# in pg_hba.conf, so a plaintext connection is refused), scram-sha-256
# passwords, and role yadtq_cert authenticated by its client certificate;
# certificates from scripts/certs.sh, and `env` prints a
# sslmode=verify-full URL with the CA as sslrootcert.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/lib.sh" # apt_install
TLS="${YADTQ_PG_TLS:-0}"
if [[ "$TLS" == 1 ]]; then STATE="$ROOT/.local/postgres-tls"; else STATE="$ROOT/.local/postgres"; fi
DATA="$STATE/data"
SOCK="$STATE/run"
PORT="${YADTQ_PG_PORT:-5433}"
URL="postgres://yadtq:yadtq@127.0.0.1:$PORT/yadtq"
if [[ "$TLS" == 1 ]]; then
  CERTS="$(bash "$ROOT/scripts/certs.sh" dir)"
  URL="$URL?sslmode=verify-full&sslrootcert=$CERTS/ca.pem"
fi

log() { echo "[postgres] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Newest installed server version's bin dir (Debian keeps them out of PATH).
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true; }

ensure_installed() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "PostgreSQL server not found"
    apt_install postgresql
  fi
  BIN="$(find_bin)"
  # The server refuses to run as root, so it runs as the 'postgres' system user.
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
}

as_pg() { if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl() { as_pg "$BIN/pg_ctl" -D "$DATA" "$@"; }
psql_admin() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }

init_cluster() {
  mkdir -p "$STATE" "$SOCK"
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$STATE" "$SOCK"; fi
  as_pg test -x "$STATE" || die "user postgres cannot reach $STATE (a parent dir is not world-executable)"
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    log "initdb in $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --auth=trust --no-locale -E UTF8 >"$STATE/initdb.log"
    echo "include 'yadtq.conf'" >> "$DATA/postgresql.conf"
  fi
  local v; v="$(cat "$DATA/PG_VERSION")"
  [[ "$BIN" == "/usr/lib/postgresql/$v/bin" ]] || BIN="/usr/lib/postgresql/$v/bin"
  [[ -x "$BIN/postgres" ]] || die "cluster was made by PostgreSQL $v, which is not installed; remove $DATA"
  # Rewritten every start so YADTQ_PG_PORT changes apply. fsync stays on: tests rely on durability.
  cat > "$DATA/yadtq.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 500
shared_buffers = 256MB
fsync = on
# Per-statement time and row counts (SELECT * FROM pg_stat_statements), as a
# production server would have; bench/profile.sh prints the top statements.
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
  if [[ "$TLS" == 1 ]]; then secure_cluster; fi
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$DATA/yadtq.conf"; fi
}

# TLS settings and a pg_hba.conf without a plaintext TCP line, rewritten every
# start. The server's key and certificates are copied next to the data, owned
# by the server's user (PostgreSQL refuses a key others can read).
secure_cluster() {
  bash "$ROOT/scripts/certs.sh" make
  local tls="$STATE/tls"
  mkdir -p "$tls"
  cp "$CERTS/server.pem" "$CERTS/server.key" "$CERTS/ca.pem" "$tls/"
  chmod 600 "$tls/server.key"
  if [[ "$(id -u)" == 0 ]]; then chown -R postgres: "$tls"; fi
  cat >> "$DATA/yadtq.conf" <<CONF
ssl = on
ssl_cert_file = '$tls/server.pem'
ssl_key_file = '$tls/server.key'
# Client certificates (role yadtq_cert) are verified against this CA.
ssl_ca_file = '$tls/ca.pem'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
hba_file = '$STATE/pg_hba.conf'
CONF
  # First match wins. The Unix socket is this script's own (psql_admin); TCP
  # is hostssl only: with no host/hostnossl line, a plaintext connection
  # finds no entry and is refused.
  cat > "$STATE/pg_hba.conf" <<HBA
local   all  postgres                  trust
hostssl all  yadtq_cert  127.0.0.1/32  cert
hostssl all  all         127.0.0.1/32  scram-sha-256
HBA
  if [[ "$(id -u)" == 0 ]]; then chown postgres: "$STATE/pg_hba.conf"; fi
}

is_running() { pg_ctl status >/dev/null 2>&1; }

start() {
  ensure_installed; init_cluster
  if is_running; then
    log "already running on 127.0.0.1:$PORT"
  else
    log "starting on 127.0.0.1:$PORT (log: $STATE/server.log)"
    pg_ctl -l "$STATE/server.log" -w -t 30 start >/dev/null || { tail -n 30 "$STATE/server.log" >&2; die "start failed"; }
  fi
  local t0=$SECONDS
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; do
    (( SECONDS - t0 > 30 )) && { tail -n 30 "$STATE/server.log" >&2; die "not ready after 30s"; }
    sleep 0.5
  done
  # Tests create a database per test, hence SUPERUSER/CREATEDB.
  psql_admin <<'SQL'
SELECT 'CREATE ROLE yadtq LOGIN SUPERUSER CREATEDB PASSWORD ''yadtq'''
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'yadtq') \gexec
SELECT 'CREATE DATABASE yadtq OWNER yadtq'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'yadtq') \gexec
SQL
  # The certificate-authenticated role has no password: only its client
  # certificate (CN yadtq_cert, scripts/certs.sh) lets it in.
  if [[ "$TLS" == 1 ]]; then
    psql_admin <<'SQL'
SELECT 'CREATE ROLE yadtq_cert LOGIN SUPERUSER'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'yadtq_cert') \gexec
SQL
  fi
  log "ready: $URL"
}

stop() {
  BIN="$(find_bin)"
  if [[ -z "$BIN" || ! -f "$DATA/PG_VERSION" ]] || ! is_running; then log "not running"; return 0; fi
  log "stopping"
  pg_ctl -m fast -w stop >/dev/null
  log "stopped"
}

status() {
  BIN="$(find_bin)"
  if [[ -n "$BIN" && -f "$DATA/PG_VERSION" ]] && is_running; then log "running on 127.0.0.1:$PORT"; else log "not running"; exit 3; fi
}

case "${1:-}" in
  start|stop|status)
    if [[ -n "${DATABASE_URL:-}" ]]; then log "DATABASE_URL is set: using the user's server, nothing to $1"; exit 0; fi
    "$1" ;;
  env) printf 'export DATABASE_URL=%q\n' "${DATABASE_URL:-$URL}" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
