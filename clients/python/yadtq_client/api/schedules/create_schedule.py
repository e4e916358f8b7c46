from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.create_schedule import CreateSchedule
from ...models.problem import Problem
from ...models.schedule import Schedule
from ...types import Response


def _get_kwargs(
    *,
    body: CreateSchedule,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/schedules",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Schedule | None:
    if response.status_code == 200:
        response_200 = Schedule.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = Schedule.from_dict(response.json())

        return response_201

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())

        return response_403

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())

        return response_409

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Schedule]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: CreateSchedule,
) -> Response[Problem | Schedule]:
    """Create a schedule.

     Answers 201 with the schedule and its next fire times. A client-chosen
    `id` makes creation idempotent: the same id and body again answers 200
    with the schedule, another body 409.

    Args:
        body (CreateSchedule): Body of `POST /schedules`. Example: {'id': 'nightly-report',
            'spec': {'cron': '0 2 * * *'}, 'timezone': 'Europe/Berlin', 'task': {'task': 'echo',
            'args': ['report']}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Schedule]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: CreateSchedule,
) -> Problem | Schedule | None:
    """Create a schedule.

     Answers 201 with the schedule and its next fire times. A client-chosen
    `id` makes creation idempotent: the same id and body again answers 200
    with the schedule, another body 409.

    Args:
        body (CreateSchedule): Body of `POST /schedules`. Example: {'id': 'nightly-report',
            'spec': {'cron': '0 2 * * *'}, 'timezone': 'Europe/Berlin', 'task': {'task': 'echo',
            'args': ['report']}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Schedule
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: CreateSchedule,
) -> Response[Problem | Schedule]:
    """Create a schedule.

     Answers 201 with the schedule and its next fire times. A client-chosen
    `id` makes creation idempotent: the same id and body again answers 200
    with the schedule, another body 409.

    Args:
        body (CreateSchedule): Body of `POST /schedules`. Example: {'id': 'nightly-report',
            'spec': {'cron': '0 2 * * *'}, 'timezone': 'Europe/Berlin', 'task': {'task': 'echo',
            'args': ['report']}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Schedule]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: CreateSchedule,
) -> Problem | Schedule | None:
    """Create a schedule.

     Answers 201 with the schedule and its next fire times. A client-chosen
    `id` makes creation idempotent: the same id and body again answers 200
    with the schedule, another body 409.

    Args:
        body (CreateSchedule): Body of `POST /schedules`. Example: {'id': 'nightly-report',
            'spec': {'cron': '0 2 * * *'}, 'timezone': 'Europe/Berlin', 'task': {'task': 'echo',
            'args': ['report']}}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Schedule
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
