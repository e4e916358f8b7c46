from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.problem import Problem
from ...models.workflow import Workflow
from ...models.workflow_request import WorkflowRequest
from ...types import Response


def _get_kwargs(
    *,
    body: WorkflowRequest,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/workflows",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | Workflow | None:
    if response.status_code == 200:
        response_200 = Workflow.from_dict(response.json())

        return response_200

    if response.status_code == 202:
        response_202 = Workflow.from_dict(response.json())

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | Workflow]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: WorkflowRequest,
) -> Response[Problem | Workflow]:
    """Submit a workflow: a DAG of tasks.

     Every node is an ordinary task with the id `wf:<workflow id>:<ref>`; the
    nodes without parents start `queued`, the others `waiting` until all
    their parents have finished (then `queued`, in the transaction that
    records the last parent's outcome, or `cancelled` with kind
    `parent_failed` when a parent did not succeed and the node says
    `on_parent_failure: cancel`). A node's handler receives its parents'
    results by ref.

    Args:
        body (WorkflowRequest): Body of `POST /workflows`. Example: {'id': 'album-7', 'tasks':
            [{'ref': 'resize', 'task': 'echo', 'args': ['img-1']}, {'ref': 'album', 'task': 'echo',
            'depends_on': ['resize']}]}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Workflow]
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
    body: WorkflowRequest,
) -> Problem | Workflow | None:
    """Submit a workflow: a DAG of tasks.

     Every node is an ordinary task with the id `wf:<workflow id>:<ref>`; the
    nodes without parents start `queued`, the others `waiting` until all
    their parents have finished (then `queued`, in the transaction that
    records the last parent's outcome, or `cancelled` with kind
    `parent_failed` when a parent did not succeed and the node says
    `on_parent_failure: cancel`). A node's handler receives its parents'
    results by ref.

    Args:
        body (WorkflowRequest): Body of `POST /workflows`. Example: {'id': 'album-7', 'tasks':
            [{'ref': 'resize', 'task': 'echo', 'args': ['img-1']}, {'ref': 'album', 'task': 'echo',
            'depends_on': ['resize']}]}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Workflow
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: WorkflowRequest,
) -> Response[Problem | Workflow]:
    """Submit a workflow: a DAG of tasks.

     Every node is an ordinary task with the id `wf:<workflow id>:<ref>`; the
    nodes without parents start `queued`, the others `waiting` until all
    their parents have finished (then `queued`, in the transaction that
    records the last parent's outcome, or `cancelled` with kind
    `parent_failed` when a parent did not succeed and the node says
    `on_parent_failure: cancel`). A node's handler receives its parents'
    results by ref.

    Args:
        body (WorkflowRequest): Body of `POST /workflows`. Example: {'id': 'album-7', 'tasks':
            [{'ref': 'resize', 'task': 'echo', 'args': ['img-1']}, {'ref': 'album', 'task': 'echo',
            'depends_on': ['resize']}]}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | Workflow]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: WorkflowRequest,
) -> Problem | Workflow | None:
    """Submit a workflow: a DAG of tasks.

     Every node is an ordinary task with the id `wf:<workflow id>:<ref>`; the
    nodes without parents start `queued`, the others `waiting` until all
    their parents have finished (then `queued`, in the transaction that
    records the last parent's outcome, or `cancelled` with kind
    `parent_failed` when a parent did not succeed and the node says
    `on_parent_failure: cancel`). A node's handler receives its parents'
    results by ref.

    Args:
        body (WorkflowRequest): Body of `POST /workflows`. Example: {'id': 'album-7', 'tasks':
            [{'ref': 'resize', 'task': 'echo', 'args': ['img-1']}, {'ref': 'album', 'task': 'echo',
            'depends_on': ['resize']}]}.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | Workflow
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
