#!/usr/bin/env bash
# Secured PostgreSQL and Kafka for tests/tests/secured.rs and for trying the
# settings of docs/deployment.md ("Encrypted and authenticated connections"):
# scripts/postgres.sh with YADTQ_PG_TLS=1 (TLS only, scram-sha-256 or a
# client certificate) on YADTQ_SECURED_PG_PORT (default 5435), and
# scripts/kafka.sh with YADTQ_KAFKA_SASL_SSL=1 (one SASL_SSL listener, SCRAM)
# on YADTQ_SECURED_KAFKA_PORT (default 9096; the controller takes the next
# port), with the certificates of scripts/certs.sh. Apart from the plaintext
# servers: their own ports and .local/ folders.
# Usage: scripts/secured.sh start|stop|status|env|service-env
#   env          prints YADTQ_SECURED_DATABASE_URL, YADTQ_SECURED_KAFKA,
#                YADTQ_SECURED_CERTS, YADTQ_SECURED_KAFKA_USERNAME and
#                YADTQ_SECURED_KAFKA_PASSWORD (what the test reads)
#   service-env  prints DATABASE_URL, KAFKA_BOOTSTRAP and the YADTQ_KAFKA_*
#                settings a gateway or worker needs for these servers
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_PORT="${YADTQ_SECURED_PG_PORT:-5435}"
KAFKA_PORT="${YADTQ_SECURED_KAFKA_PORT:-9096}"

# Without the exported URLs, which make the scripts leave servers alone.
pg() { env -u DATABASE_URL YADTQ_PG_TLS=1 YADTQ_PG_PORT="$PG_PORT" bash "$ROOT/scripts/postgres.sh" "$@"; }
kafka() { env -u KAFKA_BOOTSTRAP YADTQ_KAFKA_SASL_SSL=1 YADTQ_KAFKA_PORT="$KAFKA_PORT" bash "$ROOT/scripts/kafka.sh" "$@"; }

case "${1:-}" in
  start) bash "$ROOT/scripts/certs.sh" make; pg start; kafka start ;;
  stop) kafka stop; pg stop ;;
  status) pg status && kafka status ;;
  service-env) pg env; kafka env ;;
  env)
    (
      eval "$(pg env)"; eval "$(kafka env)"
      printf 'export %s=%q\n' YADTQ_SECURED_DATABASE_URL "$DATABASE_URL" YADTQ_SECURED_KAFKA "$KAFKA_BOOTSTRAP" \
        YADTQ_SECURED_CERTS "$(bash "$ROOT/scripts/certs.sh" dir)" \
        YADTQ_SECURED_KAFKA_USERNAME "$YADTQ_KAFKA_SASL_USERNAME" YADTQ_SECURED_KAFKA_PASSWORD "$YADTQ_KAFKA_SASL_PASSWORD"
    ) ;;
  *) echo "usage: $0 start|stop|status|env|service-env" >&2; exit 2 ;;
esac
