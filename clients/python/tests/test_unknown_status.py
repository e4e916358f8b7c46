"""A status this SDK does not know (a newer gateway's, e.g. `waiting`, during
a rolling upgrade) reads as a plain `str` and is never terminal. Against a
local stub of the gateway: what is tested is the parsing of its answers."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from yadtq import TERMINAL, Yadtq, unwrap
from yadtq_client.api.tasks import get_task
from yadtq_client.models import TaskStatus

TASK = {
    "id": "t-1",
    "task": "add",
    "args": [1, 2],
    "kwargs": {},
    "queue": "default",
    "status": "waiting",
    "result": None,
    "error": None,
    "attempts": 0,
    "max_retries": 3,
    "timeout": 300.0,
    "run_at": None,
    "progress": None,
    "cancel_requested_at": None,
    "worker_id": None,
    "created_at": "2025-01-01T00:00:00Z",
    "started_at": None,
    "finished_at": None,
    "trace_id": None,
}


class Stub(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server name)
        if self.path.startswith("/tasks/t-1"):
            body = TASK
        elif self.path.startswith("/tasks"):
            body = {"tasks": [TASK, {**TASK, "id": "t-2", "status": "success", "result": 3}], "next_cursor": None}
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub() -> Iterator[Yadtq]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Yadtq(f"http://127.0.0.1:{server.server_address[1]}", api_key="yadtq_stub")
    finally:
        server.shutdown()
        server.server_close()


def test_an_unknown_status_reads_as_a_string_and_a_known_one_as_the_enum(stub):
    task = unwrap(get_task.sync_detailed("t-1", client=stub.client))
    assert task.status == "waiting" and not isinstance(task.status, TaskStatus)
    assert task.status not in TERMINAL
    listed = {t.id: t.status for t in stub.iter_tasks()}
    assert listed == {"t-1": "waiting", "t-2": TaskStatus.SUCCESS}
    assert isinstance(listed["t-2"], TaskStatus)
    assert task.to_dict()["status"] == "waiting"


def test_waiting_for_a_task_in_an_unknown_status_keeps_waiting(stub):
    with pytest.raises(TimeoutError, match="still waiting"):
        stub.wait("t-1", timeout=0.2)
