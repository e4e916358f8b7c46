from http import HTTPStatus
from typing import Any
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.task_page import TaskPage
from ...models.task_status import TaskStatus
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    status: TaskStatus | Unset = UNSET,
    task: str | Unset = UNSET,
    queue: str | Unset = UNSET,
    worker: UUID | Unset = UNSET,
    schedule: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    json_status: str | Unset = UNSET
    if not isinstance(status, Unset):
        json_status = status.value

    params["status"] = json_status

    params["task"] = task

    params["queue"] = queue

    json_worker: str | Unset = UNSET
    if not isinstance(worker, Unset):
        json_worker = str(worker)
    params["worker"] = json_worker

    params["schedule"] = schedule

    params["limit"] = limit

    params["cursor"] = cursor

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/tasks",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | TaskPage | None:
    if response.status_code == 200:
        response_200 = TaskPage.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | TaskPage]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    status: TaskStatus | Unset = UNSET,
    task: str | Unset = UNSET,
    queue: str | Unset = UNSET,
    worker: UUID | Unset = UNSET,
    schedule: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
) -> Response[Problem | TaskPage]:
    """List tasks, newest first, with filters and keyset pagination.

    Args:
        status (TaskStatus | Unset): Where a task is in its lifecycle. Terminal: `success`,
            `failed`, `cancelled`. A task may also carry a status not listed here (a newer release's,
            during a rolling upgrade): treat it as not terminal.
        task (str | Unset):
        queue (str | Unset):
        worker (UUID | Unset):
        schedule (str | Unset):
        limit (int | Unset):
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TaskPage]
    """

    kwargs = _get_kwargs(
        status=status,
        task=task,
        queue=queue,
        worker=worker,
        schedule=schedule,
        limit=limit,
        cursor=cursor,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    status: TaskStatus | Unset = UNSET,
    task: str | Unset = UNSET,
    queue: str | Unset = UNSET,
    worker: UUID | Unset = UNSET,
    schedule: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
) -> Problem | TaskPage | None:
    """List tasks, newest first, with filters and keyset pagination.

    Args:
        status (TaskStatus | Unset): Where a task is in its lifecycle. Terminal: `success`,
            `failed`, `cancelled`. A task may also carry a status not listed here (a newer release's,
            during a rolling upgrade): treat it as not terminal.
        task (str | Unset):
        queue (str | Unset):
        worker (UUID | Unset):
        schedule (str | Unset):
        limit (int | Unset):
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TaskPage
    """

    return sync_detailed(
        client=client,
        status=status,
        task=task,
        queue=queue,
        worker=worker,
        schedule=schedule,
        limit=limit,
        cursor=cursor,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    status: TaskStatus | Unset = UNSET,
    task: str | Unset = UNSET,
    queue: str | Unset = UNSET,
    worker: UUID | Unset = UNSET,
    schedule: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
) -> Response[Problem | TaskPage]:
    """List tasks, newest first, with filters and keyset pagination.

    Args:
        status (TaskStatus | Unset): Where a task is in its lifecycle. Terminal: `success`,
            `failed`, `cancelled`. A task may also carry a status not listed here (a newer release's,
            during a rolling upgrade): treat it as not terminal.
        task (str | Unset):
        queue (str | Unset):
        worker (UUID | Unset):
        schedule (str | Unset):
        limit (int | Unset):
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | TaskPage]
    """

    kwargs = _get_kwargs(
        status=status,
        task=task,
        queue=queue,
        worker=worker,
        schedule=schedule,
        limit=limit,
        cursor=cursor,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    status: TaskStatus | Unset = UNSET,
    task: str | Unset = UNSET,
    queue: str | Unset = UNSET,
    worker: UUID | Unset = UNSET,
    schedule: str | Unset = UNSET,
    limit: int | Unset = UNSET,
    cursor: str | Unset = UNSET,
) -> Problem | TaskPage | None:
    """List tasks, newest first, with filters and keyset pagination.

    Args:
        status (TaskStatus | Unset): Where a task is in its lifecycle. Terminal: `success`,
            `failed`, `cancelled`. A task may also carry a status not listed here (a newer release's,
            during a rolling upgrade): treat it as not terminal.
        task (str | Unset):
        queue (str | Unset):
        worker (UUID | Unset):
        schedule (str | Unset):
        limit (int | Unset):
        cursor (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | TaskPage
    """

    return (
        await asyncio_detailed(
            client=client,
            status=status,
            task=task,
            queue=queue,
            worker=worker,
            schedule=schedule,
            limit=limit,
            cursor=cursor,
        )
    ).parsed
