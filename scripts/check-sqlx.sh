#!/usr/bin/env bash
# Checks that the committed offline query data (.sqlx/) matches the queries
# in the code and the schema the migrations build: every `sqlx::query!` is
# checked against a fresh database migrated from migrations/ (`cargo sqlx
# prepare --check`). Run with --write after changing a query or a migration
# to rewrite .sqlx/ (commit the result).
# sqlx-cli is installed pinned to Cargo.lock's sqlx version, under .cache/.
# Needs DATABASE_URL naming a PostgreSQL server whose role may create
# databases (scripts/postgres.sh's does); uses and recreates the database
# `yadtq_sqlx` on that server.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
require_cargo
mode=--check
case "${1:-}" in
  --write) mode= ;;
  "") ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac
: "${DATABASE_URL:?DATABASE_URL must name a PostgreSQL server (see scripts/postgres.sh env)}"

version="$(awk '$0 == "name = \"sqlx\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
cli="$ROOT/.cache/sqlx-cli-$version"
if [[ ! -x "$cli/bin/cargo-sqlx" ]]; then
  echo "check-sqlx: installing sqlx-cli $version into $cli" >&2
  cargo install sqlx-cli --version "=$version" --locked --no-default-features --features postgres,rustls \
    --root "$cli" --quiet
fi
export PATH="$cli/bin:$PATH"

url="${DATABASE_URL%%\?*}"
url="${url%/*}/yadtq_sqlx"
sqlx database drop -y --database-url "$url" >/dev/null
sqlx database create --database-url "$url"
sqlx migrate run --source migrations --database-url "$url" >/dev/null
DATABASE_URL="$url" cargo sqlx prepare --workspace $mode -- --all-targets
