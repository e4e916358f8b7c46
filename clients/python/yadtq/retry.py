"""Retries of idempotent calls, and the Idempotency-Key that makes a submit one.

A gateway behind a load balancer can die with a request in flight: the
balancer then answers 502 (nginx's HTML "Bad Gateway"), and a gateway that
cannot reach PostgreSQL answers 503. Neither says whether the request took
effect, so only a request that is safe to repeat is sent again:

- every `GET` (reads, long-polls, listings, the event stream's opening);
- `POST /tasks` and `POST /tasks/batch` carrying a task `id` or an
  `Idempotency-Key` header, which every submit does: the transport adds a
  fresh key (a UUID) to a submit without either, once per call, so its
  retries carry the same key and the gateway answers a repeat `200` with the
  task it already has (a batch's task `i` without an id gets the id `K.i`);
- `POST /tasks/{id}/cancel`.

Never `POST /tasks/{id}/retry` (a repeat could run the task again), nor the
admin operations. Retried: connection failures (refused, reset, closed before
an answer) and 502, 503, 504, and 429, after the answer's `Retry-After` when it
has one (503 too), else after a capped exponential backoff with full jitter.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import re
import time
import uuid
from dataclasses import dataclass

import httpx

__all__ = ["RETRY_STATUSES", "RetryPolicy", "RetryTransport", "AsyncRetryTransport", "is_idempotent"]

#: Answers retried on an idempotent call.
RETRY_STATUSES = frozenset({429, 502, 503, 504})

#: Transport failures retried on an idempotent call: the connection could not
#: be made, or broke (reset, closed) before the whole answer came. A read
#: timeout is not retried (the gateway may still be working on it).
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)

_SUBMIT = re.compile(r"/tasks(/batch)?/?$")
_CANCEL = re.compile(r"/tasks/[^/]+/cancel/?$")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long an idempotent call is retried.

    `max_attempts` counts every try, the first included (1: never retry).
    Before retry `n` (1, 2, ...) the client sleeps a random time between 0
    and `min(cap, base * 2 ** (n - 1))` seconds (full jitter), or the
    answer's `Retry-After` when it has one; a `Retry-After` above
    `max_retry_after` seconds is not waited for (the answer is returned).
    The defaults (5 tries, 0.2 s, 5 s) ride out a gateway's death behind a
    balancer in well under a second and give up after about 1.5 s of backoff
    on average (at most 3 s)."""

    max_attempts: int = 5
    base: float = 0.2
    cap: float = 5.0
    max_retry_after: float = 60.0

    def backoff(self, retry: int) -> float:
        """The sleep before retry number `retry` (1 for the first)."""
        return random.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))

    def delay(self, retry: int, response: httpx.Response | None) -> float | None:
        """The sleep before retry `retry` after `response` (None: a transport
        failure); None when it must not be retried."""
        if retry >= self.max_attempts:
            return None
        after = retry_after(response) if response is not None else None
        if after is None:
            return self.backoff(retry)
        return after if after <= self.max_retry_after else None


#: No retries: `Yadtq(url, retry=NO_RETRY)`.
NO_RETRY = RetryPolicy(max_attempts=1)


def retry_after(response: httpx.Response) -> float | None:
    """The answer's `Retry-After` in seconds (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json_body(request: httpx.Request) -> object:
    try:
        return json.loads(request.read() or b"null")
    except ValueError:
        return None


def add_idempotency_key(request: httpx.Request) -> None:
    """Gives a submit (`POST /tasks`, `POST /tasks/batch`) a fresh
    `Idempotency-Key` unless it has one or (single submit) names its id."""
    if request.method != "POST" or "idempotency-key" in request.headers:
        return
    m = _SUBMIT.search(request.url.path)
    if m is None:
        return
    if m.group(1) is None:  # POST /tasks
        body = _json_body(request)
        if isinstance(body, dict) and (body.get("id") or body.get("task-id")):
            return
    request.headers["Idempotency-Key"] = str(uuid.uuid4())


def is_idempotent(request: httpx.Request) -> bool:
    """True for a request that may be sent again (see the module's doc)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    if request.method != "POST":
        return False
    path = request.url.path
    if _CANCEL.search(path):
        return True
    m = _SUBMIT.search(path)
    if m is None:
        return False
    if "idempotency-key" in request.headers:
        return True
    body = _json_body(request)
    return m.group(1) is None and isinstance(body, dict) and bool(body.get("id") or body.get("task-id"))


class RetryTransport(httpx.BaseTransport):
    """An httpx transport that keys submits and retries idempotent calls."""

    def __init__(self, policy: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None):
        self.policy = policy or RetryPolicy()
        self.transport = transport or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        add_idempotency_key(request)
        if not is_idempotent(request):
            return self.transport.handle_request(request)
        retry = 1
        while True:
            try:
                response = self.transport.handle_request(request)
            except RETRY_ERRORS:
                delay = self.policy.delay(retry, None)
                if delay is None:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                delay = self.policy.delay(retry, response)
                if delay is None:
                    return response
                response.close()
            time.sleep(delay)
            retry += 1

    def close(self) -> None:
        self.transport.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    """`RetryTransport` for `httpx.AsyncClient` (the generated `asyncio` functions)."""

    def __init__(self, policy: RetryPolicy | None = None, transport: httpx.AsyncBaseTransport | None = None):
        self.policy = policy or RetryPolicy()
        self.transport = transport or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        add_idempotency_key(request)
        if not is_idempotent(request):
            return await self.transport.handle_async_request(request)
        retry = 1
        while True:
            try:
                response = await self.transport.handle_async_request(request)
            except RETRY_ERRORS:
                delay = self.policy.delay(retry, None)
                if delay is None:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES:
                    return response
                delay = self.policy.delay(retry, response)
                if delay is None:
                    return response
                await response.aclose()
            await asyncio.sleep(delay)
            retry += 1

    async def aclose(self) -> None:
        await self.transport.aclose()
