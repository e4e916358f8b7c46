from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.dead_letters import DeadLetters
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    partition: int | Unset = UNSET,
    before: int | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["partition"] = partition

    params["before"] = before

    params["limit"] = limit

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/dead-letters",
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> DeadLetters | Problem | None:
    if response.status_code == 200:
        response_200 = DeadLetters.from_dict(response.json())

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[DeadLetters | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    partition: int | Unset = UNSET,
    before: int | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> Response[DeadLetters | Problem]:
    """List dead letters, newest first: records a worker found on a task topic
    that are not valid envelopes, with the reason and origin it gave. Values
    are cut to 4,096 bytes by default (`truncated`; the gateway's
    `--dead-letter-preview-bytes`); read one whole by its address. An
    `admin` key sees those naming its tenant's tasks, a `cluster` key all.
    One read scans at most 10,000 records (`--dead-letter-scan-records`) or
    half the read timeout, so a page can hold fewer records than asked, even
    none: go on while `next_before` is not null.

    Args:
        partition (int | Unset):
        before (int | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeadLetters | Problem]
    """

    kwargs = _get_kwargs(
        partition=partition,
        before=before,
        limit=limit,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    partition: int | Unset = UNSET,
    before: int | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> DeadLetters | Problem | None:
    """List dead letters, newest first: records a worker found on a task topic
    that are not valid envelopes, with the reason and origin it gave. Values
    are cut to 4,096 bytes by default (`truncated`; the gateway's
    `--dead-letter-preview-bytes`); read one whole by its address. An
    `admin` key sees those naming its tenant's tasks, a `cluster` key all.
    One read scans at most 10,000 records (`--dead-letter-scan-records`) or
    half the read timeout, so a page can hold fewer records than asked, even
    none: go on while `next_before` is not null.

    Args:
        partition (int | Unset):
        before (int | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeadLetters | Problem
    """

    return sync_detailed(
        client=client,
        partition=partition,
        before=before,
        limit=limit,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    partition: int | Unset = UNSET,
    before: int | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> Response[DeadLetters | Problem]:
    """List dead letters, newest first: records a worker found on a task topic
    that are not valid envelopes, with the reason and origin it gave. Values
    are cut to 4,096 bytes by default (`truncated`; the gateway's
    `--dead-letter-preview-bytes`); read one whole by its address. An
    `admin` key sees those naming its tenant's tasks, a `cluster` key all.
    One read scans at most 10,000 records (`--dead-letter-scan-records`) or
    half the read timeout, so a page can hold fewer records than asked, even
    none: go on while `next_before` is not null.

    Args:
        partition (int | Unset):
        before (int | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DeadLetters | Problem]
    """

    kwargs = _get_kwargs(
        partition=partition,
        before=before,
        limit=limit,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    partition: int | Unset = UNSET,
    before: int | Unset = UNSET,
    limit: int | Unset = UNSET,
) -> DeadLetters | Problem | None:
    """List dead letters, newest first: records a worker found on a task topic
    that are not valid envelopes, with the reason and origin it gave. Values
    are cut to 4,096 bytes by default (`truncated`; the gateway's
    `--dead-letter-preview-bytes`); read one whole by its address. An
    `admin` key sees those naming its tenant's tasks, a `cluster` key all.
    One read scans at most 10,000 records (`--dead-letter-scan-records`) or
    half the read timeout, so a page can hold fewer records than asked, even
    none: go on while `next_before` is not null.

    Args:
        partition (int | Unset):
        before (int | Unset):
        limit (int | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DeadLetters | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            partition=partition,
            before=before,
            limit=limit,
        )
    ).parsed
