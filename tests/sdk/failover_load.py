"""Load for tests/tests/balancer.rs: THREADS threads submit TASKS `echo`
tasks (args [TAG-i]) through the balancer with the Python SDK, each reading
its task back once; prints one JSON line: the ids accepted and every error
the SDK raised (client-visible errors). Arguments: URL TASKS THREADS TAG;
the API key from YADTQ_API_KEY."""

import json
import os
import sys
import threading

from yadtq import Yadtq
from yadtq_client.api.tasks import get_task

url, total, threads, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
q = Yadtq(url, api_key=os.environ["YADTQ_API_KEY"])
lock = threading.Lock()
ids: list[str] = []
errors: list[str] = []
next_i = iter(range(total))


def run() -> None:
    while True:
        with lock:
            i = next(next_i, None)
        if i is None:
            return
        try:
            task = q.submit("echo", [f"{tag}-{i}"])
            back = get_task.sync_detailed(task.id, client=q.client)
            if back.status_code != 200:
                raise RuntimeError(f"read {task.id}: {back.status_code} {back.content[:80]!r}")
            with lock:
                ids.append(task.id)
        except Exception as e:  # noqa: BLE001 (every error counts)
            with lock:
                errors.append(f"{i}: {type(e).__name__}: {str(e)[:200]}")


workers = [threading.Thread(target=run) for _ in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
print(json.dumps({"ids": ids, "errors": errors}))
