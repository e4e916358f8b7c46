#!/usr/bin/env bash
# The test suite: the offline query data check (scripts/check-sqlx.sh),
# unit tests (the store's on a real PostgreSQL) and the end-to-end tests, which start the real
# gateway and worker binaries against real PostgreSQL and Apache Kafka.
# Starts both servers (installing what is missing) unless DATABASE_URL /
# KAFKA_BOOTSTRAP point at the user's own, and then the three-node Kafka
# cluster for the failover test, the secured (TLS, SASL_SSL) PostgreSQL and
# Kafka of tests/tests/secured.rs, and a Prometheus server; then schemathesis
# against a live gateway (scripts/schemathesis.sh) and the SDKs' tests
# (scripts/test-clients.sh), each against a gateway and worker of its own on
# the same servers; then every benchmark scenario, small, with the debug
# binaries (scripts/bench.sh --smoke, about a minute; it fails on any figure
# printed n/a or any error count above 0); stops what it started.
# Extra arguments go to `cargo test` (e.g. a test name filter), and leave
# schemathesis, the SDKs' tests and the benchmark smoke run out; so do
# YADTQ_TEST_SCHEMATHESIS=0, YADTQ_TEST_CLIENTS=0 and YADTQ_TEST_BENCH=0.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
require_cargo
trap stop_started_services EXIT
# Fault tests stop and start the servers; only when they are this project's local ones.
if [[ -z "${DATABASE_URL:-}" && -z "${KAFKA_BOOTSTRAP:-}" ]]; then export YADTQ_TEST_LOCAL_SERVICES=1; fi
start_services
# The committed offline query data (.sqlx/) must match the code and the
# migrations: every build checks its SQL against it.
bash "$ROOT/scripts/check-sqlx.sh"
# The Prometheus server of tests/tests/prometheus.rs (Debian's package,
# installed when missing; scrapes the targets a test lists, every second).
start_service prometheus
export YADTQ_PROMETHEUS_URL YADTQ_PROMETHEUS_TARGETS YADTQ_PROMETHEUS_CREDENTIALS
# The three-node cluster of the broker failover test (tests/tests/cluster.rs,
# skipped without it), only with the local servers: the test kills its
# brokers. YADTQ_TEST_CLUSTER=0 leaves it out (three more JVMs, ~1.5 GiB).
if [[ "${YADTQ_TEST_LOCAL_SERVICES:-}" == 1 && "${YADTQ_TEST_CLUSTER:-1}" != 0 ]]; then
  start_service kafka-cluster
  export YADTQ_KAFKA_CLUSTER
fi
# The secured PostgreSQL and Kafka of tests/tests/secured.rs (TLS only,
# SCRAM, the certificates of scripts/certs.sh; skipped without them), on
# ports of their own (YADTQ_SECURED_PG_PORT, YADTQ_SECURED_KAFKA_PORT), only
# with the local servers. YADTQ_TEST_SECURED=0 leaves them out (one more JVM).
if [[ "${YADTQ_TEST_LOCAL_SERVICES:-}" == 1 && "${YADTQ_TEST_SECURED:-1}" != 0 ]]; then
  start_service secured
  export YADTQ_SECURED_DATABASE_URL YADTQ_SECURED_KAFKA YADTQ_SECURED_CERTS YADTQ_SECURED_KAFKA_USERNAME \
    YADTQ_SECURED_KAFKA_PASSWORD
fi

# The load-balancer tests (tests/tests/balancer.rs) run Debian's nginx and
# HAProxy on the deploy files, and tests/tests/deploy_files.rs checks those
# files with `nginx -t` and `haproxy -c`.
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  source "$ROOT/scripts/pinned-tools.sh"
  apt_install nginx-light
fi
if ! command -v haproxy >/dev/null && [[ ! -x /usr/sbin/haproxy ]]; then
  source "$ROOT/scripts/pinned-tools.sh"
  apt_install haproxy
fi
# The gateway-failover test (tests/tests/balancer.rs) drives its load with the
# Python SDK, in the SDKs' pinned virtual environment (made once per lock file).
source "$ROOT/scripts/pinned-tools.sh"
YADTQ_TEST_PYTHON="$(pinned_venv clients/python/requirements-dev.txt "$ROOT/.cache/clients")/bin/python"
export YADTQ_TEST_PYTHON

# The dashboard test (tests/tests/dashboard.rs) drives Debian's headless
# Chromium over WebDriver (chromedriver).
if [[ ! -x /usr/bin/chromedriver ]] && ! command -v chromedriver >/dev/null; then
  source "$ROOT/scripts/pinned-tools.sh"
  apt_install chromium chromium-driver
fi

# The previous release's gateway and worker, for the rolling-upgrade test
# (tests/tests/upgrade.rs): built once per machine, outside the clone, before
# this checkout's build, with which it shares the dependencies' builds (that
# build then links this checkout's binaries back). YADTQ_TEST_UPGRADE=0
# leaves it out.
if [[ "${YADTQ_TEST_UPGRADE:-1}" != 0 ]]; then
  if YADTQ_PREV_BIN_DIR="$(bash "$ROOT/scripts/prev-release.sh" dir)"; then
    export YADTQ_PREV_BIN_DIR
  else
    # Only when the pinned commit cannot be had (a shallow clone that cannot
    # fetch): the rest of the suite still runs, and this says so loudly.
    echo "[test] WARNING: the previous release could not be built (above): the rolling-upgrade test is SKIPPED" >&2
  fi
fi

cargo build --workspace --bins
# End-to-end tests share one broker and one PostgreSQL; run them one at a time.
cargo test --workspace "$@" -- --test-threads=1
# The contract, property-tested against a live gateway and worker of its own
# on the same servers (about a minute); not with a cargo test filter, nor with
# YADTQ_TEST_SCHEMATHESIS=0.
if [[ $# -eq 0 && "${YADTQ_TEST_SCHEMATHESIS:-1}" != 0 ]]; then
  bash scripts/schemathesis.sh
fi
if [[ $# -eq 0 && "${YADTQ_TEST_CLIENTS:-1}" != 0 ]]; then
  bash scripts/test-clients.sh
fi
# The benchmark's scenarios still measure (scripts/bench.sh --smoke: a few
# hundred tasks each, the debug binaries built above, no Celery; its own
# stacks on the same servers, which it leaves running); not with a cargo test
# filter, nor with YADTQ_TEST_BENCH=0.
if [[ $# -eq 0 && "${YADTQ_TEST_BENCH:-1}" != 0 ]]; then
  bash scripts/bench.sh --smoke
fi
