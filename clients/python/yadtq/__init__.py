"""A thin, hand-written layer over the generated client (`yadtq_client`).

The generated functions (`yadtq_client.api.tasks.get_task.sync_detailed`, ...)
return the parsed body of any documented status, a `Problem` included. This
layer adds what they leave to the caller:

- `unwrap`: the parsed body of a success, or `ProblemError` (carrying the
  `Problem`) for an error;
- `Yadtq.submit_and_wait` / `Yadtq.wait`: long-poll `GET /tasks/{id}?wait=`
  until the task is terminal;
- `Yadtq.iter_tasks`: every task of a `GET /tasks` listing, following
  `next_cursor` from page to page;
- `Yadtq.submit_unique`: a submission with a unique key (docs/unique.md),
  telling a new task from the existing holder of the key;
- `Yadtq.events`: the server-sent events of `GET /tasks/{id}/events`, as
  `TaskEvent`s, until the terminal one;
- `Yadtq.create_schedule` / `Yadtq.iter_schedules`: periodic tasks
  (docs/schedules.md); a schedule's tasks are `iter_tasks(schedule=ID)`;
- limits (docs/limits.md): `Yadtq.put_limit`, `Yadtq.get_limit`,
  `Yadtq.iter_limits`, `Yadtq.delete_limit`; a task takes limits with
  `submit(..., limits=[...])` and waits `held` until they have room;
- workflows (docs/workflows.md): `Yadtq.submit_workflow`,
  `Yadtq.wait_workflow` (long-polls `GET /workflows/{id}?wait=`) and
  `Yadtq.wait_tasks` (one `POST /tasks/wait` per 1,000 tasks);
- retries (`yadtq.retry`): every submit carries an `Idempotency-Key` (unless
  it names its task id), and idempotent calls (reads, keyed submits, cancel;
  never `retry`) are retried on connection failures, 502, 503, 504 and 429
  (after `Retry-After`) with capped exponential backoff and jitter
  (`RetryPolicy`, `Yadtq(..., retry=...)`), for the generated functions too.

`Yadtq.client` is the generated client (`yadtq_client.AuthenticatedClient`
when given an API key, which it sends as `Authorization: Bearer <key>` on
every request; `yadtq_client.Client` without one): pass it to any generated
function for everything else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from yadtq_client import AuthenticatedClient, Client
from yadtq_client.api.limits import delete_limit, get_limit, list_limits, put_limit
from yadtq_client.api.schedules import create_schedule, list_schedules
from yadtq_client.api.tasks import get_task, list_tasks, submit_task, wait_tasks
from yadtq_client.api.workflows import get_workflow, submit_workflow
from yadtq_client.errors import UnexpectedStatus
from yadtq_client.models import (
    CreateSchedule,
    Limit,
    LimitDetail,
    Problem,
    PutLimit,
    Schedule,
    SubmitRequest,
    Task,
    TaskStatus,
    UniqueRequest,
    Until,
    WaitRequest,
    Workflow,
    WorkflowNodeRequest,
    WorkflowRequest,
    WorkflowStatus,
)
from yadtq_client.types import UNSET, Response

from .retry import NO_RETRY, AsyncRetryTransport, RetryPolicy, RetryTransport

__all__ = [
    "NO_RETRY",
    "TERMINAL",
    "ProblemError",
    "RetryPolicy",
    "Submitted",
    "TaskEvent",
    "UniqueRequest",
    "Yadtq",
    "submit_request",
    "unwrap",
]

T = TypeVar("T")

#: Statuses a task never leaves (but for an explicit retry). A task's `status`
#: is a `TaskStatus`, or a plain `str` for a status this SDK does not know (a
#: newer gateway's), which is never terminal:
#: `task.status in TERMINAL` is the test.
TERMINAL = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})

#: The gateway's longest long-poll, seconds.
MAX_WAIT = 60.0

#: Most task ids one `POST /tasks/wait` takes.
MAX_WAIT_IDS = 1000


class ProblemError(Exception):
    """The gateway answered with an RFC 9457 problem document."""

    def __init__(self, problem: Problem):
        super().__init__(f"{problem.status} {problem.title}: {problem.detail}")
        self.problem = problem

    @property
    def status(self) -> int:
        return self.problem.status

    @property
    def field(self) -> str | None:
        """The request field at fault (`queue`, `id`, `tasks[3].args`, ...), if any."""
        return self.problem.field or None


def unwrap(response: Response[T | Problem]) -> T:
    """The parsed body of a generated `*_detailed` call, or `ProblemError`."""
    parsed = response.parsed
    if isinstance(parsed, Problem):
        raise ProblemError(parsed)
    if parsed is None:  # a status the document does not list
        raise UnexpectedStatus(response.status_code, response.content)
    return parsed


def submit_request(
    task: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
) -> SubmitRequest:
    """A `SubmitRequest`; `options` are its other fields by their JSON names
    (`id`, `queue`, `max_retries`, `countdown`, `eta`, `timeout`, ...)."""
    return SubmitRequest.from_dict({"task": task, "args": list(args), "kwargs": kwargs or {}, **options})


@dataclass(frozen=True)
class Submitted:
    """What `Yadtq.submit_unique` got: `task`, and `existing`: True when it is
    the task that already held the key (header `Yadtq-Unique: existing`),
    nothing created; False for a new task."""

    task: Task
    existing: bool


@dataclass(frozen=True)
class TaskEvent:
    """One server-sent event: `kind` is `status` or `progress`; `task` the task then."""

    kind: str
    task: Task


class Yadtq:
    """A yadtq gateway.

    `api_key` is the token of an API key (`yadtq-gateway keys create`, or
    `POST /admin/keys`), sent as `Authorization: Bearer <key>`; the gateway
    answers 401 without a valid one (unless it runs with `--auth off`) and 403
    when the key lacks the scope an operation needs, both as `ProblemError`.
    `None` sends no key. `timeout` (seconds) bounds each request; it is above
    the longest long-poll, so `wait` never times out on its own. `retry` is
    the policy of idempotent calls (`yadtq.retry`; `NO_RETRY` turns retries
    off; submits carry an `Idempotency-Key` either way)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        *,
        api_key: str | None = None,
        timeout: float = MAX_WAIT + 15,
        retry: RetryPolicy | None = None,
    ):
        policy = retry or RetryPolicy()
        headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
        settings = {"base_url": base_url, "headers": headers, "timeout": httpx.Timeout(timeout)}
        self.client: AuthenticatedClient | Client
        if api_key is None:
            self.client = Client(base_url=base_url, timeout=httpx.Timeout(timeout))
        else:
            self.client = AuthenticatedClient(base_url=base_url, token=api_key, timeout=httpx.Timeout(timeout))
        # The generated client's own httpx clients, with the retrying transports.
        self.client.set_httpx_client(httpx.Client(transport=RetryTransport(policy), **settings))
        self.client.set_async_httpx_client(httpx.AsyncClient(transport=AsyncRetryTransport(policy), **settings))

    def submit(self, task: str, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any) -> Task:
        """`POST /tasks`; `options` as in `submit_request`."""
        return unwrap(submit_task.sync_detailed(client=self.client, body=submit_request(task, args, kwargs, **options)))

    def submit_unique(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        for_seconds: int | None = None,
        also_while: Sequence[str] = (),
        **options: Any,
    ) -> Submitted:
        """`POST /tasks` with at most one live task per key (docs/unique.md):
        `key` (default: a hash of the task, its arguments and queue),
        `for_seconds` (the key holds within time buckets of that many seconds),
        `also_while` (terminal statuses that also hold it, e.g. `["success"]`).
        A repeat while the holder holds the key returns the holder, `existing`."""
        unique: dict[str, Any] = {}
        if key is not None:
            unique["key"] = key
        if for_seconds is not None:
            unique["for_seconds"] = for_seconds
        if also_while:
            unique["while"] = list(also_while)
        body = submit_request(task, args, kwargs, unique=unique, **options)
        response = submit_task.sync_detailed(client=self.client, body=body)
        return Submitted(unwrap(response), response.headers.get("yadtq-unique") == "existing")

    def wait(self, task_id: str, timeout: float = 300.0) -> Task:
        """The task once terminal, long-polling at most `MAX_WAIT` per request;
        `TimeoutError` if it is not terminal within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            task = unwrap(get_task.sync_detailed(task_id, client=self.client, wait=max(0.0, min(left, MAX_WAIT))))
            if task.status in TERMINAL:
                return task
            if left <= 0:
                raise TimeoutError(f"task {task_id} is still {task.status} after {timeout} s")

    def submit_and_wait(
        self,
        task: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        timeout: float = 300.0,
        **options: Any,
    ) -> Task:
        """Submit, then `wait` for the outcome."""
        return self.wait(self.submit(task, args, kwargs, **options).id, timeout)

    def submit_workflow(self, tasks: Sequence[dict[str, Any]], workflow_id: str | None = None) -> Workflow:
        """`POST /workflows`: `tasks` are the nodes as dicts (`ref`, `task`,
        `args`, `depends_on`, ...); `workflow_id` makes it idempotent (the
        same id and nodes again return the same workflow)."""
        nodes = [WorkflowNodeRequest.from_dict(t) for t in tasks]
        body = WorkflowRequest(tasks=nodes, id=UNSET if workflow_id is None else workflow_id)
        return unwrap(submit_workflow.sync_detailed(client=self.client, body=body))

    def wait_workflow(self, workflow_id: str, timeout: float = 300.0) -> Workflow:
        """The workflow once every node is terminal (`status` other than
        `running`), long-polling; `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(left, MAX_WAIT))
            wf = unwrap(get_workflow.sync_detailed(workflow_id, client=self.client, wait=wait))
            if wf.status != WorkflowStatus.RUNNING:
                return wf
            if left <= 0:
                raise TimeoutError(f"workflow {workflow_id} is still running after {timeout} s")

    def wait_tasks(self, ids: Sequence[str], until: str = "all", timeout: float = 300.0) -> list[Task]:
        """The tasks `ids` once all of them (`until="all"`) or one of them
        (`"any"`, at most 1,000 ids) are terminal, in the order given, with
        one `POST /tasks/wait` per 1,000 ids at a time; `TimeoutError` after
        `timeout` seconds."""
        if until == "any" and len(ids) > MAX_WAIT_IDS:
            raise ValueError(f'until="any" takes at most {MAX_WAIT_IDS} ids')
        deadline = time.monotonic() + timeout
        out: list[Task] = []
        for start in range(0, len(ids), MAX_WAIT_IDS):
            chunk = list(ids[start : start + MAX_WAIT_IDS])
            while True:
                left = deadline - time.monotonic()
                body = WaitRequest(ids=chunk, until=Until(until), timeout=max(0.0, min(left, MAX_WAIT)))
                answer = unwrap(wait_tasks.sync_detailed(client=self.client, body=body))
                if answer.done:
                    out.extend(answer.tasks)
                    break
                if left <= 0:
                    raise TimeoutError(f"tasks not {until} terminal after {timeout} s")
        return out

    def iter_tasks(self, *, page_size: int = 50, **filters: Any) -> Iterator[Task]:
        """Every task of `GET /tasks` matching `filters` (`status`, `task`,
        `queue`, `worker`), newest first, one page of `page_size` at a time."""
        cursor: str | Any = UNSET
        while True:
            page = unwrap(list_tasks.sync_detailed(client=self.client, limit=page_size, cursor=cursor, **filters))
            yield from page.tasks
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def create_schedule(
        self,
        schedule_id: str,
        task: str,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        cron: str | None = None,
        every: int | None = None,
        offset: int | None = None,
        task_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> Schedule:
        """`POST /schedules`: fire `task` with `args` and `kwargs` on `cron` (5
        or 6 fields, local to `timezone`) or `every` seconds (plus `offset`).
        `task_options` are the task's other fields (`queue`, `max_retries`,
        `timeout`, ...); `options` the schedule's (`timezone`, `overlap`,
        `catchup_window`, `jitter`, `start_at`, `end_at`, `max_runs`,
        `paused`), by their JSON names. The same id and body again return
        the schedule; another body is a 409 `ProblemError`."""
        spec: dict[str, Any] = {"cron": cron} if cron is not None else {"every": every}
        if offset is not None:
            spec["offset"] = offset
        template = {"task": task, "args": list(args), "kwargs": kwargs or {}, **(task_options or {})}
        body = CreateSchedule.from_dict({"id": schedule_id, "spec": spec, "task": template, **options})
        return unwrap(create_schedule.sync_detailed(client=self.client, body=body))

    def iter_schedules(self, *, page_size: int = 50) -> Iterator[Schedule]:
        """Every schedule of `GET /schedules`, newest first, a page at a time."""
        cursor: str | Any = UNSET
        while True:
            page = unwrap(list_schedules.sync_detailed(client=self.client, limit=page_size, cursor=cursor))
            yield from page.schedules
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def put_limit(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        rate: tuple[int, float] | None = None,
        key: str | None = None,
        tasks: Sequence[str] = (),
    ) -> Limit:
        """`PUT /limits/{name}` (docs/limits.md): at most `concurrency` tasks
        of one bucket running at once (0 pauses), and/or `rate` = `(count,
        per_seconds)` releases per window; `key` a JSON pointer into
        `{"args", "kwargs"}` (one bucket per value; it cannot change: 409);
        `tasks` task names that take the limit without naming it. The whole
        limit: what is not given is unset."""
        body: dict[str, Any] = {"tasks": list(tasks)}
        if concurrency is not None:
            body["concurrency"] = concurrency
        if rate is not None:
            body["rate"] = {"count": rate[0], "per_seconds": rate[1]}
        if key is not None:
            body["key"] = key
        return unwrap(put_limit.sync_detailed(name, client=self.client, body=PutLimit.from_dict(body)))

    def get_limit(self, name: str, *, page_size: int = 50, cursor: str | None = None) -> LimitDetail:
        """`GET /limits/{name}`: the limit and a page of its buckets (running,
        held, releases in the window); pass `next_cursor` as `cursor` for more."""
        after: str | Any = UNSET if cursor is None else cursor
        return unwrap(get_limit.sync_detailed(name, client=self.client, limit=page_size, cursor=after))

    def iter_limits(self, *, page_size: int = 50) -> Iterator[Limit]:
        """Every limit of `GET /limits`, by name, a page at a time."""
        cursor: str | Any = UNSET
        while True:
            page = unwrap(list_limits.sync_detailed(client=self.client, limit=page_size, cursor=cursor))
            yield from page.limits
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def delete_limit(self, name: str) -> None:
        """`DELETE /limits/{name}`; the tasks it held are released."""
        response = delete_limit.sync_detailed(name, client=self.client)
        if response.status_code != 204:
            unwrap(response)

    def events(self, task_id: str) -> Iterator[TaskEvent]:
        """The task's server-sent events, the current state first, until the
        event with a terminal status (then the stream ends)."""
        path = f"/tasks/{quote(task_id, safe='')}/events"
        with self.client.get_httpx_client().stream("GET", path) as response:
            if response.status_code != 200:
                response.read()
                raise ProblemError(Problem.from_dict(response.json()))
            kind, data = "message", []
            for line in response.iter_lines():
                if line.startswith(":"):  # keep-alive comment
                    continue
                if line:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "event":
                        kind = value
                    elif name == "data":
                        data.append(value)
                    continue
                if data:
                    yield TaskEvent(kind, Task.from_dict(json.loads("\n".join(data))))
                kind, data = "message", []
