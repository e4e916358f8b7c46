from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.api_key import ApiKey
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    id: UUID,
    *,
    confirm: str | Unset = UNSET,
) -> dict[str, Any]:

    params: dict[str, Any] = {}

    params["confirm"] = confirm

    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/admin/keys/{id}/revoke".format(
            id=quote(str(id), safe=""),
        ),
        "params": params,
    }

    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> ApiKey | Problem | None:
    if response.status_code == 200:
        response_200 = ApiKey.from_dict(response.json())

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

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[ApiKey | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient | Client,
    confirm: str | Unset = UNSET,
) -> Response[ApiKey | Problem]:
    """Revoke an API key: every gateway refuses it within `--auth-cache-ttl` (2 s
    by default). A key revoking itself, and the last working key of a tenant
    holding `admin` or `cluster`, are revoked only when `confirm` says so
    (409 otherwise): a leaked key can still be killed by its holder, not by
    mistake.

    Args:
        id (UUID):
        confirm (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ApiKey | Problem]
    """

    kwargs = _get_kwargs(
        id=id,
        confirm=confirm,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: UUID,
    *,
    client: AuthenticatedClient | Client,
    confirm: str | Unset = UNSET,
) -> ApiKey | Problem | None:
    """Revoke an API key: every gateway refuses it within `--auth-cache-ttl` (2 s
    by default). A key revoking itself, and the last working key of a tenant
    holding `admin` or `cluster`, are revoked only when `confirm` says so
    (409 otherwise): a leaked key can still be killed by its holder, not by
    mistake.

    Args:
        id (UUID):
        confirm (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ApiKey | Problem
    """

    return sync_detailed(
        id=id,
        client=client,
        confirm=confirm,
    ).parsed


async def asyncio_detailed(
    id: UUID,
    *,
    client: AuthenticatedClient | Client,
    confirm: str | Unset = UNSET,
) -> Response[ApiKey | Problem]:
    """Revoke an API key: every gateway refuses it within `--auth-cache-ttl` (2 s
    by default). A key revoking itself, and the last working key of a tenant
    holding `admin` or `cluster`, are revoked only when `confirm` says so
    (409 otherwise): a leaked key can still be killed by its holder, not by
    mistake.

    Args:
        id (UUID):
        confirm (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ApiKey | Problem]
    """

    kwargs = _get_kwargs(
        id=id,
        confirm=confirm,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: UUID,
    *,
    client: AuthenticatedClient | Client,
    confirm: str | Unset = UNSET,
) -> ApiKey | Problem | None:
    """Revoke an API key: every gateway refuses it within `--auth-cache-ttl` (2 s
    by default). A key revoking itself, and the last working key of a tenant
    holding `admin` or `cluster`, are revoked only when `confirm` says so
    (409 otherwise): a leaked key can still be killed by its holder, not by
    mistake.

    Args:
        id (UUID):
        confirm (str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ApiKey | Problem
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            confirm=confirm,
        )
    ).parsed
