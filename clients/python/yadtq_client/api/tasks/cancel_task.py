from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.task import Task
from ...types import Response


def _get_kwargs(
    id: str,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/tasks/{id}/cancel".format(
            id=quote(str(id), safe=""),
        ),
    }

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Task]:
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
) -> Response[Problem | Task]:
    """Cancel a task. `waiting`, `held`, `queued` and `scheduled` tasks become `cancelled` at once
    (200); a `processing` task gets a cancel request (202) that its worker acts
    on within one heartbeat, aborting the handler, and it becomes `cancelled`.
    Cancelling a cancelled task answers 200 with it, so a request repeated
    after a lost answer (the SDKs and the CLI retry cancels) is not an error.
    A task in a status this release does not know (a newer release's) gets a
    cancel request too (202, status unchanged), which the
    release that knows the status honours.

    Args:
        id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Task]
    """

    kwargs = _get_kwargs(
        id=id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Problem | Task | None:
    """Cancel a task. `waiting`, `held`, `queued` and `scheduled` tasks become `cancelled` at once
    (200); a `processing` task gets a cancel request (202) that its worker acts
    on within one heartbeat, aborting the handler, and it becomes `cancelled`.
    Cancelling a cancelled task answers 200 with it, so a request repeated
    after a lost answer (the SDKs and the CLI retry cancels) is not an error.
    A task in a status this release does not know (a newer release's) gets a
    cancel request too (202, status unchanged), which the
    release that knows the status honours.

    Args:
        id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Task
    """

    return sync_detailed(
        id=id,
        client=client,
    ).parsed


async def asyncio_detailed(
    id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Response[Problem | Task]:
    """Cancel a task. `waiting`, `held`, `queued` and `scheduled` tasks become `cancelled` at once
    (200); a `processing` task gets a cancel request (202) that its worker acts
    on within one heartbeat, aborting the handler, and it becomes `cancelled`.
    Cancelling a cancelled task answers 200 with it, so a request repeated
    after a lost answer (the SDKs and the CLI retry cancels) is not an error.
    A task in a status this release does not know (a newer release's) gets a
    cancel request too (202, status unchanged), which the
    release that knows the status honours.

    Args:
        id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Task]
    """

    kwargs = _get_kwargs(
        id=id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    id: str,
    *,
    client: AuthenticatedClient | Client,
) -> Problem | Task | None:
    """Cancel a task. `waiting`, `held`, `queued` and `scheduled` tasks become `cancelled` at once
    (200); a `processing` task gets a cancel request (202) that its worker acts
    on within one heartbeat, aborting the handler, and it becomes `cancelled`.
    Cancelling a cancelled task answers 200 with it, so a request repeated
    after a lost answer (the SDKs and the CLI retry cancels) is not an error.
    A task in a status this release does not know (a newer release's) gets a
    cancel request too (202, status unchanged), which the
    release that knows the status honours.

    Args:
        id (str):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Task
    """

    return (
        await asyncio_detailed(
            id=id,
            client=client,
        )
    ).parsed
