#!/usr/bin/env bash
# Benchmarks (docs/benchmarks.md): builds the release binaries and runs
# `yadtq-bench` against real PostgreSQL and Kafka, with Celery on Redis side by
# side. Starts PostgreSQL and Kafka like scripts/test.sh (unless DATABASE_URL /
# KAFKA_BOOTSTRAP name the user's own), a private Redis on
# YADTQ_BENCH_REDIS_PORT (6390, no persistence) and a Python venv with the
# pinned Celery in .cache/bench-venv; stops what it started (never servers
# that were running already, e.g. scripts/test.sh's).
# Arguments go to yadtq-bench (`scripts/bench.sh --help`), e.g.
#   scripts/bench.sh --runs 1 --scenarios submit,drain --drain-tasks 20000
# YADTQ_BENCH_NO_CELERY=1 skips the Celery set-up (and its figures).
# With YADTQ_URL set, measures that gateway instead (scenario 1, submit,
# only), sending YADTQ_API_KEY (required then); no server is started.
# --smoke (first argument): every scenario but Celery, once, a few hundred
# tasks each and short timings, with the DEBUG binaries (the
# `cargo build --workspace --bins` of scripts/test.sh, which runs this; no
# release build), on stacks of its own even with YADTQ_URL set; about a
# minute. It checks that the scenarios still measure, not how fast: its
# figures are not comparable. Later arguments override its settings. Report
# in target/bench-logs/smoke.md and smoke.json (last.md / last.json stay the
# last real run's).
# Exit status: non-zero when the report lists problems (a scenario failed, a
# figure is n/a, an error count is above 0); skipped on purpose (e.g. Celery
# with YADTQ_BENCH_NO_CELERY=1) is not a problem.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
require_cargo

REDIS_PORT="${YADTQ_BENCH_REDIS_PORT:-6390}"
VENV="$ROOT/.cache/bench-venv"
REQS="$ROOT/bench/celery/requirements.txt"
LOGS="$ROOT/target/bench-logs"
REDIS_PID=""

log() { echo "[bench] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cleanup() {
  if [[ -n "$REDIS_PID" ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  stop_started_services
}
trap cleanup EXIT

SMOKE=""
if [[ "${1:-}" == --smoke ]]; then
  SMOKE=1
  shift
  # The scenarios' code paths with the fewest tasks that still give every
  # figure samples (docs/benchmarks.md, "Smoke run"); the recovery keeps the
  # default liveness timings (~11 s), as its figure's label says.
  set -- --runs 1 --scenarios submit,drain,e2e,rate,recovery,pg,listing --warmup-tasks 100 \
    --clients 8 --workers 2 --concurrency 4 --batch-size 20 --submit-secs 1 --submit-rate 200 \
    --drain-tasks 300 --e2e-tasks 200 --rate 100 --rate-secs 2 --long-polls 10 --recovery-tasks 4 \
    --pg-tasks 256 --listing-rows 2000 --listing-requests 5 --listing-clients 8 "$@"
  export YADTQ_BENCH_NO_CELERY=1
  # The smoke run checks the bench's own stacks, never the user's gateway.
  unset YADTQ_URL
fi
for a in "$@"; do [[ "$a" == "-h" || "$a" == "--help" || "$a" == "-V" ]] && HELP_ONLY=1; done

setup_celery() {
  if ! command -v redis-server >/dev/null; then
    log "redis-server not found"
    apt_install redis-server
  fi
  local py; py="$(command -v python3)" || die "python3 not found (needed for the Celery side; YADTQ_BENCH_NO_CELERY=1 skips it)"
  local stamp="$VENV/.requirements.sha256" want
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  if [[ ! -x "$VENV/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "creating $VENV with the pinned Celery"
    "$py" -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
    echo "$want" > "$stamp"
  fi
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    die "something already listens on port $REDIS_PORT (its data would be flushed): set YADTQ_BENCH_REDIS_PORT"
  fi
  mkdir -p "$LOGS"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$LOGS/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis-server did not start (see $LOGS/redis.log)"
  export YADTQ_BENCH_PYTHON="$VENV/bin/python"
  export YADTQ_BENCH_REDIS="redis://127.0.0.1:$REDIS_PORT/0"
}

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -n "$SMOKE" ]]; then
  # The debug build of scripts/test.sh (nothing to do right after it).
  cargo build --workspace --bins --quiet
  PROFILE=debug REPORT=smoke
else
  cargo build --release --bins
  PROFILE=release REPORT=last
fi
BENCH="$TARGET/$PROFILE/yadtq-bench"
if [[ -n "${HELP_ONLY:-}" ]]; then exec "$BENCH" "$@"; fi

if [[ -n "${YADTQ_URL:-}" ]]; then
  require_api_key "the benchmark's requests"
else
  start_services
  [[ -z "${YADTQ_BENCH_NO_CELERY:-}" ]] && setup_celery
fi
export YADTQ_BENCH_KAFKA_VERSION="${YADTQ_BENCH_KAFKA_VERSION:-$(sed -n 's/^KAFKA_VERSION=//p' "$ROOT/scripts/kafka-common.sh")}"
export YADTQ_BIN_DIR="${YADTQ_BIN_DIR:-$TARGET/$PROFILE}"
mkdir -p "$LOGS"
JSON=(--json "$LOGS/$REPORT.json"); for a in "$@"; do [[ "$a" == --json* ]] && JSON=(); done
# pipefail: the exit status is yadtq-bench's (1 when its report lists problems).
"$BENCH" "${JSON[@]}" "$@" | tee "$LOGS/$REPORT.md"
