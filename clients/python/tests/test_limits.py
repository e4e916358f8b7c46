"""Limits through the SDK (docs/limits.md): declare, read, take, delete."""

import uuid

import pytest
from conftest import QUEUE

from yadtq import ProblemError, Yadtq
from yadtq_client.models import TaskStatus


def test_a_paused_limit_holds_a_task_until_it_is_deleted(q: Yadtq, new_id):
    name = f"py-{uuid.uuid4().hex[:12]}"
    limit = q.put_limit(name, concurrency=0, key="/kwargs/customer")
    assert (limit.name, limit.concurrency, limit.key) == (name, 0, "/kwargs/customer")
    assert name in [lim.name for lim in q.iter_limits(page_size=2)]
    with pytest.raises(ProblemError) as refused:
        q.put_limit(name, concurrency=1, key="/kwargs/other")
    assert (refused.value.status, refused.value.field) == (409, "key")

    task = q.submit("echo", ["hi"], {"customer": 7}, id=new_id("held"), queue=QUEUE, limits=[name])
    assert task.status == TaskStatus.HELD
    detail = q.get_limit(name)
    assert [(b.bucket, b.held) for b in detail.buckets] == [("7", 1)]

    q.delete_limit(name)
    assert q.wait(task.id, timeout=60).result == ["hi"]
    with pytest.raises(ProblemError) as gone:
        q.get_limit(name)
    assert gone.value.status == 404
