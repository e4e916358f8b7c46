"""Unique tasks through the SDK (docs/unique.md): a repeat while the holder
waits returns the holder, marked existing; once it is cancelled the key is
free; a bad option is a problem naming its field."""

import uuid

import pytest
from conftest import QUEUE

from yadtq import ProblemError
from yadtq_client.api.tasks import cancel_task


def test_a_repeat_returns_the_holder_until_it_is_cancelled(q):
    key = f"py-unique-{uuid.uuid4().hex[:12]}"
    # Scheduled a minute ahead: it holds the key for the whole test.
    first = q.submit_unique("sleep", [0], key=key, queue=QUEUE, countdown=60)
    assert not first.existing
    again = q.submit_unique("sleep", [1], key=key, queue=QUEUE, countdown=60)
    assert again.existing and again.task.id == first.task.id and again.task.args == [0]
    # The plain submit takes the option as a dict, as the JSON field.
    assert q.submit("sleep", [2], unique={"key": key}, queue=QUEUE).id == first.task.id

    assert cancel_task.sync_detailed(first.task.id, client=q.client).status_code == 200
    fresh = q.submit_unique("sleep", [0], key=key, queue=QUEUE, countdown=60)
    assert not fresh.existing and fresh.task.id != first.task.id
    cancel_task.sync_detailed(fresh.task.id, client=q.client)


def test_a_bad_unique_option_names_its_field(q):
    with pytest.raises(ProblemError) as bad:
        q.submit_unique("sleep", [0], for_seconds=0, queue=QUEUE)
    assert (bad.value.status, bad.value.field) == (400, "unique.for_seconds")
    with pytest.raises(ProblemError) as bad:
        q.submit_unique("sleep", [0], key="k" * 257, queue=QUEUE)
    assert (bad.value.status, bad.value.field) == (400, "unique.key")
