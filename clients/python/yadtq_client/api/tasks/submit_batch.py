from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.batch_request import BatchRequest
from ...models.batch_response import BatchResponse
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: BatchRequest,
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
        "url": "/tasks/batch",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> BatchResponse | Problem | None:
    if response.status_code == 200:
        response_200 = BatchResponse.from_dict(response.json())

        return response_200

    if response.status_code == 202:
        response_202 = BatchResponse.from_dict(response.json())

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[BatchResponse | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BatchRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> Response[BatchResponse | Problem]:
    """Submit up to 1,000 tasks at once: validated together, inserted in one
    transaction (all or nothing), sent to Kafka as one producer batch.

     An item with a `unique` key held by an existing task (or by an earlier
    item of the batch) creates nothing: its place in `tasks` holds that task,
    and `unique_existing` lists the place. The unique match wins over `id`.

    Items may name `limits` as in `POST /tasks`: a task whose limits have no
    room is stored `held` (still 202) and runs once they have.

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (BatchRequest): Body of `POST /tasks/batch`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchResponse | Problem]
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
    body: BatchRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> BatchResponse | Problem | None:
    """Submit up to 1,000 tasks at once: validated together, inserted in one
    transaction (all or nothing), sent to Kafka as one producer batch.

     An item with a `unique` key held by an existing task (or by an earlier
    item of the batch) creates nothing: its place in `tasks` holds that task,
    and `unique_existing` lists the place. The unique match wins over `id`.

    Items may name `limits` as in `POST /tasks`: a task whose limits have no
    room is stored `held` (still 202) and runs once they have.

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (BatchRequest): Body of `POST /tasks/batch`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchResponse | Problem
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
    body: BatchRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> Response[BatchResponse | Problem]:
    """Submit up to 1,000 tasks at once: validated together, inserted in one
    transaction (all or nothing), sent to Kafka as one producer batch.

     An item with a `unique` key held by an existing task (or by an earlier
    item of the batch) creates nothing: its place in `tasks` holds that task,
    and `unique_existing` lists the place. The unique match wins over `id`.

    Items may name `limits` as in `POST /tasks`: a task whose limits have no
    room is stored `held` (still 202) and runs once they have.

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (BatchRequest): Body of `POST /tasks/batch`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[BatchResponse | Problem]
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
    body: BatchRequest,
    idempotency_key: None | str | Unset = UNSET,
    traceparent: None | str | Unset = UNSET,
    tracestate: None | str | Unset = UNSET,
) -> BatchResponse | Problem | None:
    """Submit up to 1,000 tasks at once: validated together, inserted in one
    transaction (all or nothing), sent to Kafka as one producer batch.

     An item with a `unique` key held by an existing task (or by an earlier
    item of the batch) creates nothing: its place in `tasks` holds that task,
    and `unique_existing` lists the place. The unique match wins over `id`.

    Items may name `limits` as in `POST /tasks`: a task whose limits have no
    room is stored `held` (still 202) and runs once they have.

    Args:
        idempotency_key (None | str | Unset):
        traceparent (None | str | Unset):
        tracestate (None | str | Unset):
        body (BatchRequest): Body of `POST /tasks/batch`.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        BatchResponse | Problem
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
