"""The retry rule (yadtq.retry), against a local stub gateway that answers
from a script: idempotent calls are retried on 502, 503, 504, 429 (after
Retry-After) and refused connections; `POST /tasks/{id}/retry` is not;
every submit carries one Idempotency-Key, the same on each of its tries."""

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from stub_gateway import TASK, Quiet, StubServer, send

from yadtq import ProblemError, RetryPolicy, Yadtq
from yadtq_client.api.tasks import get_task
from yadtq_client.errors import UnexpectedStatus

FAST = RetryPolicy(max_attempts=5, base=0.01, cap=0.05)
NGINX_502 = b"<html><body><center><h1>502 Bad Gateway</h1></center></body></html>"


class Gateway(StubServer):
    """A stub gateway: `script` holds the answers to give, first to last
    (`(status, headers)`; the last repeats); `seen` the requests it got."""

    def __init__(self, port: int = 0):
        self.script: list[tuple[int, dict[str, str]]] = [(200, {})]
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        stub = self

        class Handler(Quiet):
            def answer(self):
                body_in = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body_in))
                status, headers = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                if status < 300:
                    send(self, status, json.dumps(TASK).encode(), "application/json", headers)
                elif status in (502, 504):  # nginx's page
                    send(self, status, NGINX_502, "text/html", headers)
                else:
                    problem = {"type": "about:blank", "title": "Error", "status": status, "detail": "stub"}
                    send(self, status, json.dumps(problem).encode(), "application/problem+json", headers)

            do_GET = do_POST = answer  # noqa: N815 (the http.server names)

        super().__init__(Handler, port)


@pytest.fixture
def gw() -> Iterator[Gateway]:
    g = Gateway()
    yield g
    g.close()


@pytest.mark.parametrize("status", [502, 503, 504])
def test_reads_are_retried_on_502_503_504(gw, status):
    gw.script = [(status, {}), (status, {}), (200, {})]
    q = Yadtq(gw.url, api_key="k", retry=FAST)
    task = get_task.sync("t-1", client=q.client)
    assert task is not None and task.id == "t-1"
    assert len(gw.seen) == 3
    assert all(h["authorization"] == "Bearer k" for _, _, h, _ in gw.seen)


def test_retries_give_up_after_max_attempts(gw):
    gw.script = [(502, {})]
    q = Yadtq(gw.url, retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.01))
    with pytest.raises(UnexpectedStatus):
        q.wait("t-1", timeout=0)
    assert len(gw.seen) == 3


def test_a_submit_carries_one_idempotency_key_and_is_retried(gw):
    gw.script = [(502, {}), (503, {"Retry-After": "0"}), (202, {})]
    q = Yadtq(gw.url, retry=FAST)
    q.submit("add", [1, 2])
    keys = {h.get("idempotency-key") for _, _, h, _ in gw.seen}
    assert len(gw.seen) == 3 and len(keys) == 1 and None not in keys, gw.seen
    # The next submit has a key of its own.
    gw.script = [(202, {})]
    q.submit("add", [1, 2])
    assert gw.seen[-1][2]["idempotency-key"] not in keys


def test_a_submit_with_an_id_carries_no_key_and_is_retried(gw):
    gw.script = [(502, {}), (202, {})]
    Yadtq(gw.url, retry=FAST).submit("add", [1, 2], id="mine")
    assert len(gw.seen) == 2
    assert all("idempotency-key" not in h for _, _, h, _ in gw.seen)


def test_a_batch_carries_an_idempotency_key(gw):
    gw.script = [(504, {}), (200, {})]
    q = Yadtq(gw.url, retry=FAST)
    r = q.client.get_httpx_client().post("/tasks/batch", json={"tasks": [{"task": "add", "args": [1, 2]}]})
    assert r.status_code == 200
    assert len(gw.seen) == 2 and gw.seen[0][2]["idempotency-key"] == gw.seen[1][2]["idempotency-key"]


def test_retry_of_a_task_is_never_repeated(gw):
    gw.script = [(502, {}), (200, {})]
    q = Yadtq(gw.url, retry=FAST)
    r = q.client.get_httpx_client().post("/tasks/t-1/retry")
    assert r.status_code == 502 and len(gw.seen) == 1


def test_cancel_is_retried(gw):
    gw.script = [(503, {}), (200, {})]
    q = Yadtq(gw.url, retry=FAST)
    assert q.client.get_httpx_client().post("/tasks/t-1/cancel").status_code == 200
    assert len(gw.seen) == 2


def test_429_waits_for_retry_after(gw):
    gw.script = [(429, {"Retry-After": "1"}), (200, {})]
    q = Yadtq(gw.url, retry=FAST)
    t0 = time.monotonic()
    assert get_task.sync("t-1", client=q.client).id == "t-1"
    assert time.monotonic() - t0 >= 0.95
    assert len(gw.seen) == 2


def test_problems_that_are_not_transient_are_not_retried(gw):
    gw.script = [(409, {}), (200, {})]
    q = Yadtq(gw.url, retry=FAST)
    with pytest.raises(ProblemError):
        q.submit("add", [1, 2], id="taken")
    assert len(gw.seen) == 1


def test_a_refused_connection_is_retried_until_the_gateway_is_up():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started: list[Gateway] = []
    timer = threading.Timer(0.3, lambda: started.append(Gateway(port)))
    timer.start()
    try:
        q = Yadtq(f"http://127.0.0.1:{port}", retry=RetryPolicy(max_attempts=30, base=0.05, cap=0.1))
        assert q.submit("add", [1, 2]).id == "t-1"
        assert len(started[0].seen) == 1
    finally:
        timer.join()
        for g in started:
            g.close()


def test_a_refused_connection_gives_up_after_max_attempts():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    q = Yadtq(f"http://127.0.0.1:{port}", retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.01))
    with pytest.raises(httpx.ConnectError):
        q.wait("t-1", timeout=0)
