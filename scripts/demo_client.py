#!/usr/bin/env python3
"""A yadtq client in plain Python (standard library only), used by scripts/demo.sh.

Submits the seed's example tasks and N mixed tasks over HTTP, waits for every
result by polling GET /tasks/{id}, checks each result, and prints a summary and
the worker roster from GET /workers. Exits non-zero when a result is wrong.
Usage: demo_client.py URL N, with YADTQ_API_KEY an API key that may submit,
read and see workers' hosts (operate; the demo's is an admin key).
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
EXTRA = int(sys.argv[2]) if len(sys.argv) > 2 else 300
API_KEY = os.environ.get("YADTQ_API_KEY") or sys.exit("demo_client.py: set YADTQ_API_KEY to an API key of the gateway")


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method,
                                 headers={"content-type": "application/json",
                                          "authorization": f"Bearer {API_KEY}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# The seed's examples, then a few hundred more with known answers.
SEED = [
    ({"task-id": "12345abc", "task": "multiply", "args": [4, 5]}, 20),
    ({"task": "add", "args": [1, 2]}, 3),
    ({"task": "sub", "args": [10, 4]}, 6),
    ({"task": "divide", "args": [9, 3]}, 3.0),
]


def mixed(i):
    a, b = i * 7 % 100, i % 13 + 1
    return [({"task": "add", "args": [a, b]}, a + b),
            ({"task": "sub", "args": [a, b]}, a - b),
            ({"task": "multiply", "args": [a, b]}, a * b),
            ({"task": "divide", "args": [a, b]}, a / b),
            ({"task": "echo", "args": [f"hello {i}"]}, [f"hello {i}"])][i % 5]


def submit(item):
    body, expected = item
    status, task = call("POST", "/tasks", body)
    if status not in (200, 202):
        raise SystemExit(f"submit {body} answered {status}: {task}")
    return task["id"], body, expected


def wait(entry):
    tid, body, expected = entry
    deadline = time.time() + 120
    while time.time() < deadline:
        _, task = call("GET", f"/tasks/{tid}")
        if task["status"] in ("success", "failed", "cancelled"):
            return task, body, expected
        time.sleep(0.05)
    raise SystemExit(f"task {tid} not finished after 120 s")


def main():
    items = SEED + [mixed(i) for i in range(EXTRA)]
    start = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        submitted = list(pool.map(submit, items))
        submit_s = time.time() - start
        done = list(pool.map(wait, submitted))
    total_s = time.time() - start

    wrong = [(t, e) for t, _, e in done if t["status"] != "success" or t["result"] != e]
    print("\nThe seed's examples:")
    for task, body, _ in done[:len(SEED)]:
        print(f"  {task['id'][:36]:<36} {body['task']}{tuple(body['args'])} = {task['result']!r:<6} "
              f"[{task['status']}, worker {task['worker_id'][:8]}]")
    print("\nA few of the others:")
    for task, body, _ in done[len(SEED):len(SEED) + 5]:
        print(f"  {task['id'][:8]} {body['task']}{tuple(body['args'])} = {task['result']!r}")
    by_worker = {}
    for task, _, _ in done:
        by_worker[task["worker_id"]] = by_worker.get(task["worker_id"], 0) + 1
    print(f"\n{len(done)} tasks: submitted in {submit_s:.2f} s, all finished in {total_s:.2f} s; "
          f"{len(done) - len(wrong)} correct, {len(wrong)} wrong")
    print("tasks per worker: " + ", ".join(f"{w[:8]}={n}" for w, n in sorted(by_worker.items())))

    # Counters travel with heartbeats (every 2 s): let one pass so they are current.
    time.sleep(2.5)
    _, page = call("GET", "/workers")
    workers = page["workers"]
    print("\nWorker roster (GET /workers; counters as of each worker's last heartbeat):")
    print(f"  {'id':<36} {'alive':<5} {'host':<12} {'pid':>7} {'conc':>4} {'in-flight':>9} {'processed':>9} {'failed':>6}  last heartbeat")
    for w in workers:
        print(f"  {w['id']:<36} {str(w['alive']):<5} {w['hostname'][:12]:<12} {w['pid']:>7} {w['concurrency']:>4} "
              f"{w['in_flight']:>9} {w['processed']:>9} {w['failed']:>6}  {w['last_heartbeat_at']}")
    for t, e in wrong[:10]:
        print(f"WRONG: {t['id']} {t['task']}{t['args']}: {t['status']} {t['result']!r} {t['error']} (expected {e!r})")
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
