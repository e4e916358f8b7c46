#!/usr/bin/env bash
# Where the time goes during the drain scenario: runs `yadtq-bench --scenarios
# drain` once (release build; start PostgreSQL and Kafka first, or run it from
# scripts/bench.sh's environment) and records `perf` samples of the whole
# machine from worker start until every task is terminal. Prints the CPU split
# per process and the top symbols of the workers, PostgreSQL and the gateway.
# Usage: bench/profile.sh [drain tasks, default 20000] [extra yadtq-bench flags]
# Needs perf (Debian: apt-get install linux-perf). Output in target/bench-logs/profile/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N="${1:-20000}"; shift || true
OUT="$ROOT/target/bench-logs/profile"
mkdir -p "$OUT"
: "${DATABASE_URL:?set DATABASE_URL (eval \"\$(scripts/postgres.sh env)\")}"
: "${KAFKA_BOOTSTRAP:?set KAFKA_BOOTSTRAP (eval \"\$(scripts/kafka.sh env)\")}"
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
BIN="${YADTQ_BIN_DIR:-$ROOT/target/release}"

rm -f "$OUT/perf.data" "$OUT/bench.err"
# Per-statement figures (scripts/postgres.sh loads pg_stat_statements).
psql "$DATABASE_URL" -qAtc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" \
  >/dev/null 2>&1 || echo "pg_stat_statements not available: no per-statement figures" >&2
"$BIN/yadtq-bench" --runs 1 --scenarios drain --drain-tasks "$N" "$@" >"$OUT/bench.md" 2>"$OUT/bench.err" &
BENCH=$!
until grep -q "starting the workers" "$OUT/bench.err" 2>/dev/null; do
  kill -0 "$BENCH" 2>/dev/null || { cat "$OUT/bench.err" >&2; exit 1; }
  sleep 0.1
done
perf record -F 499 -a -g -o "$OUT/perf.data" >/dev/null 2>"$OUT/perf.err" &
PERF=$!
# The bench binary's own children: its gateway and workers (read while they run).
WORKERS=""; GATEWAY=""
until grep -q "all terminal" "$OUT/bench.err" 2>/dev/null; do
  kill -0 "$BENCH" 2>/dev/null || break
  [[ -z "$WORKERS" ]] && WORKERS="$(pgrep -d, -P "$BENCH" -x yadtq-worker || true)"
  [[ -z "$GATEWAY" ]] && GATEWAY="$(pgrep -d, -P "$BENCH" -x yadtq-gateway || true)"
  sleep 0.1
done
kill -INT "$PERF"; wait "$PERF" || true
wait "$BENCH" || true

report() { perf report -i "$OUT/perf.data" --no-children --stdio --percent-limit 1.5 -g none "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30; }
{
  echo "== CPU split (from /proc, yadtq-bench)"; grep -E '^\| 5 CPU' "$OUT/bench.md" || true
  grep -E '^\| 2 drain' "$OUT/bench.md" || true
  echo; echo "== perf: share of all samples by command"; report --sort comm
  echo; echo "== perf: workers ($WORKERS), by symbol"; [[ -n "$WORKERS" ]] && report --pid "$WORKERS" --sort dso,sym
  echo; echo "== perf: postgres, by symbol"; report --comm postgres --sort dso,sym
  echo; echo "== perf: gateway ($GATEWAY), by symbol"; [[ -n "$GATEWAY" ]] && report --pid "$GATEWAY" --sort dso,sym
  echo; echo "== PostgreSQL statements by total time (whole run, set-up included)"
  psql "$DATABASE_URL" -c "SELECT calls, round(total_exec_time::numeric) AS total_ms,
      round(mean_exec_time::numeric, 3) AS mean_ms, rows,
      left(regexp_replace(query, '\s+', ' ', 'g'), 100) AS statement
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12" 2>/dev/null || true
} | tee "$OUT/summary.txt"
