from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.limit import Limit
from ...models.problem import Problem
from ...models.put_limit import PutLimit
from ...types import Response


def _get_kwargs(
    name: str,
    *,
    body: PutLimit,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/limits/{name}".format(
            name=quote(str(name), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Limit | Problem | None:
    if response.status_code == 200:
        response_200 = Limit.from_dict(response.json())

        return response_200

    if response.status_code == 201:
        response_201 = Limit.from_dict(response.json())

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Limit | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    name: str,
    *,
    client: AuthenticatedClient | Client,
    body: PutLimit,
) -> Response[Limit | Problem]:
    """Declare a limit: create it, or replace its settings and `tasks` list.

     Answers 201 when created, 200 when updated, with the limit. A raise
    releases at once the held tasks it makes room for; a lowered limit takes
    effect as running tasks finish (none is stopped). `concurrency: 0` pauses
    the limit. A `tasks` list applies to tasks submitted after it is set.

    Args:
        name (str):
        body (PutLimit): Body of `PUT /limits/{name}`: the whole limit (absent fields are unset,
            not kept). At least one of `concurrency` and `rate` (null counts as absent). Example:
            {'concurrency': 5, 'key': '/kwargs/customer_id'}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Limit | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    name: str,
    *,
    client: AuthenticatedClient | Client,
    body: PutLimit,
) -> Limit | Problem | None:
    """Declare a limit: create it, or replace its settings and `tasks` list.

     Answers 201 when created, 200 when updated, with the limit. A raise
    releases at once the held tasks it makes room for; a lowered limit takes
    effect as running tasks finish (none is stopped). `concurrency: 0` pauses
    the limit. A `tasks` list applies to tasks submitted after it is set.

    Args:
        name (str):
        body (PutLimit): Body of `PUT /limits/{name}`: the whole limit (absent fields are unset,
            not kept). At least one of `concurrency` and `rate` (null counts as absent). Example:
            {'concurrency': 5, 'key': '/kwargs/customer_id'}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Limit | Problem
    """

    return sync_detailed(
        name=name,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    name: str,
    *,
    client: AuthenticatedClient | Client,
    body: PutLimit,
) -> Response[Limit | Problem]:
    """Declare a limit: create it, or replace its settings and `tasks` list.

     Answers 201 when created, 200 when updated, with the limit. A raise
    releases at once the held tasks it makes room for; a lowered limit takes
    effect as running tasks finish (none is stopped). `concurrency: 0` pauses
    the limit. A `tasks` list applies to tasks submitted after it is set.

    Args:
        name (str):
        body (PutLimit): Body of `PUT /limits/{name}`: the whole limit (absent fields are unset,
            not kept). At least one of `concurrency` and `rate` (null counts as absent). Example:
            {'concurrency': 5, 'key': '/kwargs/customer_id'}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Limit | Problem]
    """

    kwargs = _get_kwargs(
        name=name,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    name: str,
    *,
    client: AuthenticatedClient | Client,
    body: PutLimit,
) -> Limit | Problem | None:
    """Declare a limit: create it, or replace its settings and `tasks` list.

     Answers 201 when created, 200 when updated, with the limit. A raise
    releases at once the held tasks it makes room for; a lowered limit takes
    effect as running tasks finish (none is stopped). `concurrency: 0` pauses
    the limit. A `tasks` list applies to tasks submitted after it is set.

    Args:
        name (str):
        body (PutLimit): Body of `PUT /limits/{name}`: the whole limit (absent fields are unset,
            not kept). At least one of `concurrency` and `rate` (null counts as absent). Example:
            {'concurrency': 5, 'key': '/kwargs/customer_id'}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Limit | Problem
    """

    return (
        await asyncio_detailed(
            name=name,
            client=client,
            body=body,
        )
    ).parsed
