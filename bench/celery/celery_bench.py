#!/usr/bin/env python3
"""Celery side of yadtq's benchmarks (docs/benchmarks.md).

Runs ONE scenario against a Redis broker + result backend and prints its
figures as one JSON object on the last line of stdout:

    python celery_bench.py versions
    python celery_bench.py drain --tasks 5000 --workers 2 --concurrency 16
    python celery_bench.py e2e   --tasks 2000 --workers 2 --concurrency 16

The Redis URL comes from CELERY_BENCH_REDIS (default redis://127.0.0.1:6390/0);
the database is FLUSHED at the start of each scenario, so give it a Redis of its
own (scripts/bench.sh starts one without persistence).

Set-up, chosen to match yadtq's guarantees as closely as Celery allows:
- acks_late=True and task_reject_on_worker_lost=True (a task is acknowledged
  after it ran, as yadtq commits offsets after the outcome is durable);
- prefork pool, W worker nodes of C processes each (same total concurrency as
  yadtq's W workers × C), otherwise Celery's defaults (prefetch multiplier 4);
- JSON serialisation; an `echo` task returning its arguments, like yadtq's.

Figures:
- drain: N tasks are queued with no worker running, then W workers start.
  span_s = last task's `date_done` (stored by the worker in the result
  backend) − the first task's start (recorded once per pool process through
  the task_prerun signal). Completion is detected by polling the result
  backend; wall_s is worker spawn → all results present.
- e2e: workers running (and warmed up), the client submits N tasks with
  apply_async and then calls AsyncResult.get() on each, in order.
  tasks_per_s = N / (first submit → last get() returned); latency per task =
  date_done − the client's clock just before apply_async.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import redis
from celery import Celery
from celery.signals import task_prerun

HERE = os.path.dirname(os.path.abspath(__file__))
REDIS_URL = os.environ.get("CELERY_BENCH_REDIS", "redis://127.0.0.1:6390/0")
QUEUE = "bench"
FIRST_START_KEY = "bench:first_start"

app = Celery("celery_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
)


@app.task(name="echo")
def echo(*args):
    return list(args)


_started = False


@task_prerun.connect
def _record_first_start(**_):
    # Once per pool process: a handful of Redis writes per run, not one per task.
    global _started
    if not _started:
        _started = True
        redis.Redis.from_url(REDIS_URL).zadd(FIRST_START_KEY, {str(os.getpid()): time.time()})


# ---------------------------------------------------------------- helpers


def percentile(sorted_values, q):
    """Nearest-rank percentile, as the Rust harness computes it."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 1))))
    return sorted_values[rank - 1]


def ts(date_done):
    if isinstance(date_done, str):
        date_done = datetime.fromisoformat(date_done)
    if date_done.tzinfo is None:
        date_done = date_done.replace(tzinfo=timezone.utc)
    return date_done.timestamp()


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def node_rss_mib(proc):
    """RSS of one worker node: the main process and its pool processes."""
    return sum(rss_mib(p) for p in tree(proc.pid))


def start_workers(n, concurrency):
    procs = []
    for i in range(n):
        log = open(os.path.join(os.environ.get("CELERY_BENCH_LOG_DIR", "/tmp"), f"celery-worker-{i}.log"), "w")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "--pool=prefork",
                 f"--concurrency={concurrency}", "-n", f"bench{i}@%h", "-Q", QUEUE, "--loglevel=WARNING"],
                cwd=HERE, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, stopped as a whole at the end
            )
        )
    return procs


def wait_ready(n, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(app.control.ping(timeout=0.5)) >= n:
            return
    raise SystemExit(f"fewer than {n} Celery workers answered ping in {timeout} s")


def stop_workers(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 15
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def count_done(r, ids):
    """Results present in the backend, and the latest date_done among them."""
    done, last = 0, 0.0
    for i in range(0, len(ids), 1000):
        for raw in r.mget([f"celery-task-meta-{t}" for t in ids[i:i + 1000]]):
            if raw is None:
                continue
            meta = json.loads(raw)
            if meta.get("status") in ("SUCCESS", "FAILURE"):
                done += 1
                last = max(last, ts(meta["date_done"]))
    return done, last


# ---------------------------------------------------------------- scenarios


def versions(_args):
    import billiard
    import celery
    import kombu

    info = redis.Redis.from_url(REDIS_URL).info("server")
    return {
        "celery": celery.__version__, "kombu": kombu.__version__, "billiard": billiard.__version__,
        "redis_py": redis.__version__, "redis_server": info.get("redis_version", "unknown"),
        "python": sys.version.split()[0],
    }


def drain(args):
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    t = time.time()
    ids = [echo.apply_async(args=[i]).id for i in range(args.tasks)]
    submit_per_s = args.tasks / (time.time() - t)
    assert r.llen(QUEUE) == args.tasks, "all tasks are in the broker queue before any worker starts"

    t_spawn = time.time()
    procs = start_workers(args.workers, args.concurrency)
    peak = 0.0
    try:
        deadline = t_spawn + 600
        while True:
            peak = max([peak] + [node_rss_mib(p) for p in procs])
            done, last_done = count_done(r, ids)
            if done == len(ids):
                break
            if time.time() > deadline:
                raise SystemExit(f"{done} of {len(ids)} Celery tasks done after 600 s")
            time.sleep(0.05)
        wall = time.time() - t_spawn
    finally:
        stop_workers(procs)
    first_start = min(score for _, score in r.zrange(FIRST_START_KEY, 0, -1, withscores=True))
    ok = sum(1 for raw in r.mget([f"celery-task-meta-{t}" for t in ids]) if json.loads(raw)["status"] == "SUCCESS")
    span = last_done - first_start
    return {
        "scenario": "drain", "tasks": args.tasks, "submit_per_s": submit_per_s,
        "finished_per_s": args.tasks / span, "span_s": span, "wall_s": wall,
        "not_success": args.tasks - ok, "worker_rss_peak_mib": peak,
    }


def e2e(args):
    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    procs = start_workers(args.workers, args.concurrency)
    try:
        wait_ready(args.workers)
        time.sleep(2)
        idle = max(node_rss_mib(p) for p in procs)
        for res in [echo.apply_async(args=[10**9 + i]) for i in range(200)]:  # warm-up, not measured
            res.get(timeout=120)

        t0 = time.time()
        submitted, results = [], []
        for i in range(args.tasks):
            submitted.append(time.time())
            results.append(echo.apply_async(args=[i]))
        t_submitted = time.time()
        ok = 0
        for res in results:
            res.get(timeout=300, propagate=False)
            ok += res.status == "SUCCESS"
        secs = time.time() - t0
        lat = sorted((ts(res.date_done) - s) * 1000.0 for res, s in zip(results, submitted))
    finally:
        stop_workers(procs)
    return {
        "scenario": "e2e", "tasks": args.tasks, "tasks_per_s": args.tasks / secs,
        "client_submit_per_s": args.tasks / (t_submitted - t0),
        "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99),
        "not_success": args.tasks - ok, "worker_rss_idle_mib": idle,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["versions", "drain", "e2e"])
    p.add_argument("--tasks", type=int, default=5000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args()
    out = {"versions": versions, "drain": drain, "e2e": e2e}[args.scenario](args)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
