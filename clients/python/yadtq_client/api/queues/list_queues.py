from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.queues import Queues
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    minutes: int | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["minutes"] = minutes

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/queues",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Queues | None:
    if response.status_code == 200:
        response_200 = Queues.from_dict(response.json())

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Queues]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    minutes: int | Unset = UNSET,
) -> Response[Problem | Queues]:
    """Per queue: tasks by active status (statuses this release does not know,
    a newer release's, in `other`), oldest queued age, throughput and
    failure rate over the last `minutes`, consumer lag. Reads PostgreSQL's
    partial indexes (active statuses, `finished_at`), so its cost follows the
    active and recent tasks rather than the table; the lag asks Kafka for
    watermarks and the workers' committed offsets (bounded by the gateway's
    `--lag-read-timeout`, 2 s by default).

    Args:
        minutes (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Queues]
    """

    kwargs = _get_kwargs(
        minutes=minutes,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    minutes: int | Unset = UNSET,
) -> Problem | Queues | None:
    """Per queue: tasks by active status (statuses this release does not know,
    a newer release's, in `other`), oldest queued age, throughput and
    failure rate over the last `minutes`, consumer lag. Reads PostgreSQL's
    partial indexes (active statuses, `finished_at`), so its cost follows the
    active and recent tasks rather than the table; the lag asks Kafka for
    watermarks and the workers' committed offsets (bounded by the gateway's
    `--lag-read-timeout`, 2 s by default).

    Args:
        minutes (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Queues
    """

    return sync_detailed(
        client=client,
        minutes=minutes,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    minutes: int | Unset = UNSET,
) -> Response[Problem | Queues]:
    """Per queue: tasks by active status (statuses this release does not know,
    a newer release's, in `other`), oldest queued age, throughput and
    failure rate over the last `minutes`, consumer lag. Reads PostgreSQL's
    partial indexes (active statuses, `finished_at`), so its cost follows the
    active and recent tasks rather than the table; the lag asks Kafka for
    watermarks and the workers' committed offsets (bounded by the gateway's
    `--lag-read-timeout`, 2 s by default).

    Args:
        minutes (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Queues]
    """

    kwargs = _get_kwargs(
        minutes=minutes,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    minutes: int | Unset = UNSET,
) -> Problem | Queues | None:
    """Per queue: tasks by active status (statuses this release does not know,
    a newer release's, in `other`), oldest queued age, throughput and
    failure rate over the last `minutes`, consumer lag. Reads PostgreSQL's
    partial indexes (active statuses, `finished_at`), so its cost follows the
    active and recent tasks rather than the table; the lag asks Kafka for
    watermarks and the workers' committed offsets (bounded by the gateway's
    `--lag-read-timeout`, 2 s by default).

    Args:
        minutes (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Queues
    """

    return (
        await asyncio_detailed(
            client=client,
            minutes=minutes,
        )
    ).parsed
