"""The Python SDK against a live gateway and worker: the generated functions
(`yadtq_client.api...`) and the layer on top (`yadtq`)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import API_KEY, QUEUE, URL

from yadtq import ProblemError, Yadtq, submit_request, unwrap
from yadtq_client.api.admin import create_key
from yadtq_client.api.schedules import delete_schedule
from yadtq_client.api.tasks import (
    cancel_task,
    get_task,
    list_attempts,
    list_tasks,
    retry_task,
    stream_task_events,
    submit_batch,
    submit_task,
)
from yadtq_client.api.workers import list_workers
from yadtq_client.models import BatchRequest, CreateKey, Problem, Scope, TaskStatus

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "clients/python/examples/quickstart.py"


def test_readme_quickstart_snippet_runs_and_prints_20():
    snippet = EXAMPLE.read_text()
    assert snippet in (ROOT / "README.md").read_text(), (
        "README.md must show clients/python/examples/quickstart.py as is"
    )
    env = {**os.environ, "YADTQ_URL": URL, "YADTQ_API_KEY": API_KEY}
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == "success 20\n"


def test_a_request_without_a_key_is_401_and_a_read_only_key_may_not_submit(q):
    with pytest.raises(ProblemError) as anonymous:
        Yadtq(URL).submit("multiply", [4, 5], queue=QUEUE)
    assert (anonymous.value.status, anonymous.value.field) == (401, "Authorization")

    created = unwrap(
        create_key.sync_detailed(client=q.client, body=CreateKey(scopes=[Scope.READ], name="sdk_py read-only"))
    )
    assert created.key.scopes == [Scope.READ] and created.token.startswith(created.key.token_prefix)
    reader = Yadtq(URL, api_key=created.token)
    with pytest.raises(ProblemError) as refused:
        reader.submit("multiply", [4, 5], queue=QUEUE)
    assert (refused.value.status, refused.value.field) == (403, "Authorization")
    assert "submit" in refused.value.problem.detail
    # What it may do, it does: read the admin's task.
    task = q.submit("multiply", [4, 5], queue=QUEUE)
    assert reader.wait(task.id, timeout=30).id == task.id


def test_multiply_4_5_is_20_through_the_generated_client(q, new_id):
    response = submit_task.sync_detailed(client=q.client, body=submit_request("multiply", [4, 5], queue=QUEUE))
    assert response.status_code == 202
    assert response.headers["location"] == f"/tasks/{response.parsed.id}"
    # Read your write: the task exists at once.
    assert get_task.sync(response.parsed.id, client=q.client).status in {
        TaskStatus.QUEUED,
        TaskStatus.PROCESSING,
        TaskStatus.SUCCESS,
    }
    done = get_task.sync(response.parsed.id, client=q.client, wait=30)
    assert (done.status, done.result, done.attempts) == (TaskStatus.SUCCESS, 20, 1)


def test_long_poll_answers_at_the_outcome_or_at_the_deadline(q):
    task = q.submit("sleep", [1.5], queue=QUEUE)
    started = time.monotonic()
    early = get_task.sync(task.id, client=q.client, wait=0.3)
    assert early.status in {TaskStatus.QUEUED, TaskStatus.PROCESSING}
    assert 0.3 <= time.monotonic() - started < 1.5
    done = get_task.sync(task.id, client=q.client, wait=30)
    assert (done.status, done.result) == (TaskStatus.SUCCESS, 1.5)
    assert time.monotonic() - started < 10  # answered at the outcome, not at the 30 s deadline


def test_submit_and_wait(q):
    task = q.submit_and_wait("add", [1, 2], queue=QUEUE, timeout=30)
    assert (task.status, task.result) == (TaskStatus.SUCCESS, 3)


def test_listing_filters_and_cursor_pagination(q, new_id):
    ids = [q.submit("echo", [i], id=new_id(f"list-{i}"), queue=QUEUE).id for i in range(5)]
    for i in ids:
        q.wait(i, timeout=30)
    first = unwrap(list_tasks.sync_detailed(client=q.client, queue=QUEUE, task="echo", limit=2))
    assert len(first.tasks) == 2 and first.next_cursor
    second = unwrap(
        list_tasks.sync_detailed(client=q.client, queue=QUEUE, task="echo", limit=2, cursor=first.next_cursor)
    )
    assert not {t.id for t in first.tasks} & {t.id for t in second.tasks}
    # Newest first, every page: the last five submitted come back in reverse.
    listed = [t.id for t in q.iter_tasks(page_size=2, queue=QUEUE, task="echo", status=TaskStatus.SUCCESS)]
    assert [i for i in listed if i in ids] == ids[::-1]
    assert all(t.queue == QUEUE and t.task == "echo" for t in q.iter_tasks(page_size=100, queue=QUEUE, task="echo"))
    worker = get_task.sync(ids[0], client=q.client).worker_id
    assert ids[0] in {t.id for t in q.iter_tasks(page_size=500, worker=worker, queue=QUEUE)}
    assert not set(ids) & {t.id for t in q.iter_tasks(queue=QUEUE, status=TaskStatus.FAILED, task="echo")}
    with pytest.raises(ProblemError) as bad:
        unwrap(list_tasks.sync_detailed(client=q.client, limit=0))
    assert (bad.value.status, bad.value.field) == (400, "limit")


def test_workers_with_alive(q):
    alive = unwrap(list_workers.sync_detailed(client=q.client, alive=True)).workers
    ours = [w for w in alive if QUEUE in w.queues]
    assert ours and all(w.alive for w in alive)
    assert "multiply" in ours[0].task_names and ours[0].ready
    gone = unwrap(list_workers.sync_detailed(client=q.client, alive=False, limit=500))
    assert not any(w.alive for w in gone.workers)
    one = unwrap(list_workers.sync_detailed(client=q.client, alive=True, limit=1))
    assert len(one.workers) == 1


def test_batch_all_or_nothing_and_idempotent(q, new_id):
    items = [
        submit_request("add", [1, 2], id=new_id("b-add"), queue=QUEUE),
        submit_request("sub", [10, 4], id=new_id("b-sub"), queue=QUEUE),
        submit_request("multiply", [4, 5], id=new_id("b-mul"), queue=QUEUE),
    ]
    response = submit_batch.sync_detailed(client=q.client, body=BatchRequest(tasks=items))
    assert response.status_code == 202
    assert [t.id for t in response.parsed.tasks] == [i.id for i in items]
    assert [q.wait(t.id, timeout=30).result for t in response.parsed.tasks] == [3, 6, 20]
    again = submit_batch.sync_detailed(client=q.client, body=BatchRequest(tasks=items))
    assert again.status_code == 200 and [t.result for t in again.parsed.tasks] == [3, 6, 20]

    bad = [submit_request("add", [1, 1], id=new_id("b-never"), queue=QUEUE), submit_request("add", [1], queue="nope")]
    with pytest.raises(ProblemError) as refused:
        unwrap(submit_batch.sync_detailed(client=q.client, body=BatchRequest(tasks=bad)))
    assert (refused.value.status, refused.value.field) == (422, "tasks[1].queue")
    assert get_task.sync_detailed(new_id("b-never"), client=q.client).status_code == 404  # nothing stored


def test_cancel_a_scheduled_task_then_retry_it(q):
    task = q.submit("add", [2, 2], queue=QUEUE, countdown=600)
    assert task.status == TaskStatus.SCHEDULED
    cancelled = cancel_task.sync_detailed(task.id, client=q.client)
    assert (cancelled.status_code, cancelled.parsed.status) == (200, TaskStatus.CANCELLED)
    again = cancel_task.sync_detailed(task.id, client=q.client)  # a repeat is no error
    assert (again.status_code, again.parsed.status) == (200, TaskStatus.CANCELLED)
    retried = retry_task.sync_detailed(task.id, client=q.client)
    assert (retried.status_code, retried.parsed.status) == (202, TaskStatus.QUEUED)
    assert q.wait(task.id, timeout=30).result == 4
    with pytest.raises(ProblemError) as not_failed:
        unwrap(retry_task.sync_detailed(task.id, client=q.client))
    assert not_failed.value.status == 409


def test_cancel_a_running_task(q):
    task = q.submit("sleep", [30], queue=QUEUE)
    for event in q.events(task.id):
        if event.task.status == TaskStatus.PROCESSING:
            break
    requested = cancel_task.sync_detailed(task.id, client=q.client)
    assert requested.status_code == 202 and requested.parsed.cancel_requested_at
    done = q.wait(task.id, timeout=20)
    assert done.status == TaskStatus.CANCELLED
    assert [a.outcome for a in unwrap(list_attempts.sync_detailed(task.id, client=q.client))] == ["cancelled"]


def test_attempts_of_a_failing_task_and_its_retry(q):
    task = q.submit_and_wait("fail", ["boom"], queue=QUEUE, max_retries=1, retry_backoff_base=0.1, timeout=30)
    assert (task.status, task.attempts, task.error.message) == (TaskStatus.FAILED, 2, "boom")
    attempts = unwrap(list_attempts.sync_detailed(task.id, client=q.client))
    assert [(a.attempt, a.outcome, a.error.message) for a in attempts] == [(1, "failed", "boom"), (2, "failed", "boom")]
    assert unwrap(retry_task.sync_detailed(task.id, client=q.client)).status == TaskStatus.QUEUED
    assert q.wait(task.id, timeout=30).attempts == 3

    flaky = q.submit_and_wait("flaky", [2], queue=QUEUE, retry_backoff_base=0.1, timeout=30)
    assert (flaky.status, flaky.result, flaky.attempts) == (TaskStatus.SUCCESS, 2, 2)


def test_event_stream_follows_status_and_progress_to_the_end(q):
    task = q.submit("sleep", [2.5], queue=QUEUE)
    events = list(q.events(task.id))
    assert events[0].kind == "status"
    assert (events[-1].kind, events[-1].task.status, events[-1].task.result) == ("status", TaskStatus.SUCCESS, 2.5)
    statuses = [e.task.status for e in events if e.kind == "status"]
    order = [TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.SUCCESS]
    assert statuses == sorted(statuses, key=order.index) and len(set(statuses)) == len(statuses)
    progress = [e.task.progress.percent for e in events if e.kind == "progress"]
    assert progress and all(0 < p < 100 for p in progress)
    # A finished task's stream is its terminal state alone.
    assert [(e.kind, e.task.status) for e in q.events(task.id)] == [("status", TaskStatus.SUCCESS)]


def test_errors_surface_as_typed_problems(q, new_id):
    missing = get_task.sync_detailed(new_id("never"), client=q.client)
    assert missing.status_code == 404 and isinstance(missing.parsed, Problem)
    for call in (lambda: q.wait(new_id("never")), lambda: list(q.events(new_id("never")))):
        with pytest.raises(ProblemError) as e:
            call()
        assert e.value.status == 404

    first = q.submit("multiply", [4, 5], id=new_id("dup"), queue=QUEUE)
    repeat = submit_task.sync_detailed(
        client=q.client, body=submit_request("multiply", [4, 5], id=first.id, queue=QUEUE)
    )
    assert (repeat.status_code, repeat.parsed.id) == (200, first.id)
    with pytest.raises(ProblemError) as conflict:
        q.submit("multiply", [4, 6], id=first.id, queue=QUEUE)
    assert (conflict.value.status, conflict.value.field) == (409, "id")
    key, body = new_id("key"), submit_request("add", [1, 2], queue=QUEUE)
    keyed = [submit_task.sync_detailed(client=q.client, body=body, idempotency_key=key) for _ in range(2)]
    assert [(r.status_code, r.parsed.id) for r in keyed] == [(202, key), (200, key)]

    with pytest.raises(ProblemError) as too_large:
        q.submit("echo", ["x" * (2 << 20)], queue=QUEUE)
    assert (too_large.value.status, too_large.value.field) == (413, "body")
    assert "limit" in too_large.value.problem.detail

    # The same client's next request works: the 413 closed its connection, and said so.
    with pytest.raises(ProblemError) as unknown_queue:
        q.submit("multiply", [4, 5], queue="no-such-queue")
    assert (unknown_queue.value.status, unknown_queue.value.field) == (422, "queue")

    # The generated function documents the event stream's problems too.
    assert stream_task_events.sync_detailed(new_id("never"), client=q.client).status_code == 404


def test_a_schedule_fires_its_task_and_lists_what_it_fired(q, new_id):
    schedule_id = new_id("every-second")
    created = q.create_schedule(
        schedule_id, "echo", ["tick"], every=1, overlap="allow_all", task_options={"queue": QUEUE}
    )
    assert created.id == schedule_id and len(created.next_fire_times) == 5
    assert schedule_id in [s.id for s in q.iter_schedules()]
    deadline = time.monotonic() + 30
    fired = []
    while len(fired) < 2:
        assert time.monotonic() < deadline, "the schedule fired fewer than 2 tasks in 30 s"
        fired = list(q.iter_tasks(schedule=schedule_id))
        time.sleep(0.2)
    done = q.wait(fired[-1].id)
    assert (done.status, done.schedule_id) == (TaskStatus.SUCCESS, schedule_id)
    assert done.scheduled_for is not None and done.id.endswith(f":{int(done.scheduled_for.timestamp())}")
    with pytest.raises(ProblemError) as bad:
        q.create_schedule(new_id("bad"), "echo", cron="61 * * * *")
    assert (bad.value.status, bad.value.field) == (400, "spec.cron")
    assert delete_schedule.sync_detailed(schedule_id, client=q.client).status_code == 204
