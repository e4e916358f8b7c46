from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.patch_schedule import PatchSchedule
from ...models.problem import Problem
from ...models.schedule import Schedule
from ...types import Response


def _get_kwargs(
    id: str,
    *,
    body: PatchSchedule,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "patch",
        "url": "/schedules/{id}".format(
            id=quote(str(id), safe=""),
        ),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Schedule | None:
    if response.status_code == 200:
        response_200 = Schedule.from_dict(response.json())

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
    id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PatchSchedule,
) -> Response[Problem | Schedule]:
    """Change a schedule: spec, task, policies, `paused`. The next tick after
    an edit is the new spec's first tick after the later of the last tick
    and the edit; a leader that read the schedule before the edit fires
    nothing stale.

    Args:
        id (str):
        body (PatchSchedule): Body of `PATCH /schedules/{id}`: the fields to change (absent or
            null: unchanged).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Schedule]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PatchSchedule,
) -> Problem | Schedule | None:
    """Change a schedule: spec, task, policies, `paused`. The next tick after
    an edit is the new spec's first tick after the later of the last tick
    and the edit; a leader that read the schedule before the edit fires
    nothing stale.

    Args:
        id (str):
        body (PatchSchedule): Body of `PATCH /schedules/{id}`: the fields to change (absent or
            null: unchanged).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Schedule
    """

    return sync_detailed(
        id=id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PatchSchedule,
) -> Response[Problem | Schedule]:
    """Change a schedule: spec, task, policies, `paused`. The next tick after
    an edit is the new spec's first tick after the later of the last tick
    and the edit; a leader that read the schedule before the edit fires
    nothing stale.

    Args:
        id (str):
        body (PatchSchedule): Body of `PATCH /schedules/{id}`: the fields to change (absent or
            null: unchanged).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Schedule]
    """

    kwargs = _get_kwargs(
        id=id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: str,
    *,
    client: AuthenticatedClient | Client,
    body: PatchSchedule,
) -> Problem | Schedule | None:
    """Change a schedule: spec, task, policies, `paused`. The next tick after
    an edit is the new spec's first tick after the later of the last tick
    and the edit; a leader that read the schedule before the edit fires
    nothing stale.

    Args:
        id (str):
        body (PatchSchedule): Body of `PATCH /schedules/{id}`: the fields to change (absent or
            null: unchanged).

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Schedule
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
            body=body,
        )
    ).parsed
