from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.submit_request import SubmitRequest
from ...models.task import Task
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: SubmitRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    if not isinstance(traceparent, Unset):
        headers["traceparent"] = traceparent

    if not isinstance(tracestate, Unset):
        headers["tracestate"] = tracestate

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/tasks",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Task | None:
    if response.status_code == 200:
        response_200 = Task.from_dict(response.json())

        return response_200

    if response.status_code == 202:
        response_202 = Task.from_dict(response.json())

        return response_202

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 408:
        response_408 = Problem.from_dict(response.json())

        return response_408

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())

        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Task]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: SubmitRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> Response[Problem | Task]:
    """Submit a task.

     Records the task (`queued`, or `scheduled` with `countdown`/`eta`), sends it
    to Kafka and waits briefly for the broker's ack (a task whose ack is late is
    sent by the publisher; it is accepted either way). A client-chosen id (`id`,
    `task-id` or the `Idempotency-Key` header) makes submission idempotent: the
    same id and body again returns the original task with 200; the same id with
    a different task, args, kwargs or queue is 409.

    `limits` names limits the task takes (docs/limits.md), besides those
    whose `tasks` list names its task: a task whose limits have no room now
    is accepted `held` (202, since it runs once there is room) and becomes
    `queued` when every one of its limits has room; `GET /tasks/{id}` says
    which limit holds it.

    A `unique` option (docs/unique.md) makes at most one task of its key live:
    a repeat while an earlier task holds the key answers 200 with that task
    and the header `Yadtq-Unique: existing`, creating nothing, also across
    gateways at once. When `id` and `unique` match different existing tasks,
    the unique match wins (the answer is the key's holder).

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (SubmitRequest): Body of `POST /tasks` (and each element of `POST /tasks/batch`).
            Example: {'task': 'multiply', 'args': [4, 5], 'kwargs': {}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Task]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
        traceparent=traceparent,
        tracestate=tracestate,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: SubmitRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> Problem | Task | None:
    """Submit a task.

     Records the task (`queued`, or `scheduled` with `countdown`/`eta`), sends it
    to Kafka and waits briefly for the broker's ack (a task whose ack is late is
    sent by the publisher; it is accepted either way). A client-chosen id (`id`,
    `task-id` or the `Idempotency-Key` header) makes submission idempotent: the
    same id and body again returns the original task with 200; the same id with
    a different task, args, kwargs or queue is 409.

    `limits` names limits the task takes (docs/limits.md), besides those
    whose `tasks` list names its task: a task whose limits have no room now
    is accepted `held` (202, since it runs once there is room) and becomes
    `queued` when every one of its limits has room; `GET /tasks/{id}` says
    which limit holds it.

    A `unique` option (docs/unique.md) makes at most one task of its key live:
    a repeat while an earlier task holds the key answers 200 with that task
    and the header `Yadtq-Unique: existing`, creating nothing, also across
    gateways at once. When `id` and `unique` match different existing tasks,
    the unique match wins (the answer is the key's holder).

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (SubmitRequest): Body of `POST /tasks` (and each element of `POST /tasks/batch`).
            Example: {'task': 'multiply', 'args': [4, 5], 'kwargs': {}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Task
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
        traceparent=traceparent,
        tracestate=tracestate,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: SubmitRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> Response[Problem | Task]:
    """Submit a task.

     Records the task (`queued`, or `scheduled` with `countdown`/`eta`), sends it
    to Kafka and waits briefly for the broker's ack (a task whose ack is late is
    sent by the publisher; it is accepted either way). A client-chosen id (`id`,
    `task-id` or the `Idempotency-Key` header) makes submission idempotent: the
    same id and body again returns the original task with 200; the same id with
    a different task, args, kwargs or queue is 409.

    `limits` names limits the task takes (docs/limits.md), besides those
    whose `tasks` list names its task: a task whose limits have no room now
    is accepted `held` (202, since it runs once there is room) and becomes
    `queued` when every one of its limits has room; `GET /tasks/{id}` says
    which limit holds it.

    A `unique` option (docs/unique.md) makes at most one task of its key live:
    a repeat while an earlier task holds the key answers 200 with that task
    and the header `Yadtq-Unique: existing`, creating nothing, also across
    gateways at once. When `id` and `unique` match different existing tasks,
    the unique match wins (the answer is the key's holder).

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (SubmitRequest): Body of `POST /tasks` (and each element of `POST /tasks/batch`).
            Example: {'task': 'multiply', 'args': [4, 5], 'kwargs': {}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Task]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
        traceparent=traceparent,
        tracestate=tracestate,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: SubmitRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> Problem | Task | None:
    """Submit a task.

     Records the task (`queued`, or `scheduled` with `countdown`/`eta`), sends it
    to Kafka and waits briefly for the broker's ack (a task whose ack is late is
    sent by the publisher; it is accepted either way). A client-chosen id (`id`,
    `task-id` or the `Idempotency-Key` header) makes submission idempotent: the
    same id and body again returns the original task with 200; the same id with
    a different task, args, kwargs or queue is 409.

    `limits` names limits the task takes (docs/limits.md), besides those
    whose `tasks` list names its task: a task whose limits have no room now
    is accepted `held` (202, since it runs once there is room) and becomes
    `queued` when every one of its limits has room; `GET /tasks/{id}` says
    which limit holds it.

    A `unique` option (docs/unique.md) makes at most one task of its key live:
    a repeat while an earlier task holds the key answers 200 with that task
    and the header `Yadtq-Unique: existing`, creating nothing, also across
    gateways at once. When `id` and `unique` match different existing tasks,
    the unique match wins (the answer is the key's holder).

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (SubmitRequest): Body of `POST /tasks` (and each element of `POST /tasks/batch`).
            Example: {'task': 'multiply', 'args': [4, 5], 'kwargs': {}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Task
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
            traceparent=traceparent,
            tracestate=tracestate,
        )
    ).parsed
