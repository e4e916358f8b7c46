"""A status this SDK does not know (a newer gateway's, e.g. `suspended`, during
a rolling upgrade) reads as a plain `str` and is never terminal. Against a
local stub of the gateway: what is tested is the parsing of its answers."""

from collections.abc import Iterator

import pytest
from stub_gateway import Quiet, StubServer, send_json, task

from yadtq import TERMINAL, Yadtq, unwrap
from yadtq_client.api.tasks import get_task
from yadtq_client.models import TaskStatus

SUSPENDED = task(status="suspended")


class Stub(Quiet):
    def do_GET(self):  # noqa: N802 (the http.server name)
        if self.path.startswith("/tasks/t-1"):
            send_json(self, 200, SUSPENDED)
        elif self.path.startswith("/tasks"):
            listed = [SUSPENDED, task(id="t-2", status="success", result=3)]
            send_json(self, 200, {"tasks": listed, "next_cursor": None})
        else:
            send_json(self, 404, {})


@pytest.fixture
def stub() -> Iterator[Yadtq]:
    server = StubServer(Stub)
    try:
        yield Yadtq(server.url, api_key="yadtq_stub")
    finally:
        server.close()


def test_an_unknown_status_reads_as_a_string_and_a_known_one_as_the_enum(stub):
    task = unwrap(get_task.sync_detailed("t-1", client=stub.client))
    assert task.status == "suspended" and not isinstance(task.status, TaskStatus)
    assert task.status not in TERMINAL
    listed = {t.id: t.status for t in stub.iter_tasks()}
    assert listed == {"t-1": "suspended", "t-2": TaskStatus.SUCCESS}
    assert isinstance(listed["t-2"], TaskStatus)
    assert task.to_dict()["status"] == "suspended"


def test_waiting_for_a_task_in_an_unknown_status_keeps_waiting(stub):
    with pytest.raises(TimeoutError, match="still suspended"):
        stub.wait("t-1", timeout=0.2)
