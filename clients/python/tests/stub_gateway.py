"""A local stand-in for the gateway, for the tests of how the SDK handles its
answers (parsing, retries). The SDK against a real gateway is test_sdk.py."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TASK = {
    "id": "t-1",
    "task": "add",
    "args": [1, 2],
    "kwargs": {},
    "queue": "default",
    "status": "queued",
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


def task(**fields) -> dict:
    """A task document as `GET /tasks/{id}` answers it, with `fields` replaced."""
    return {**TASK, **fields}


def send(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str, headers=None) -> None:
    """Writes one whole answer (with Content-Length, so keep-alive works)."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


def send_json(handler: BaseHTTPRequestHandler, status: int, body, headers=None) -> None:
    send(handler, status, json.dumps(body).encode(), "application/json", headers)


class Quiet(BaseHTTPRequestHandler):
    """A request handler that keeps the test output clean."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


class StubServer:
    """Serves `handler` on 127.0.0.1:`port` (0: a free port) in a thread;
    `url` is its base URL; `close()` stops it."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0):
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
