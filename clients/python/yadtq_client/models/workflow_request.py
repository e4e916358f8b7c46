from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.workflow_node_request import WorkflowNodeRequest


T = TypeVar("T", bound="WorkflowRequest")


@_attrs_define
class WorkflowRequest:
    """Body of `POST /workflows`.

    Example:
        {'id': 'album-7', 'tasks': [{'ref': 'resize', 'task': 'echo', 'args': ['img-1']}, {'ref': 'album', 'task':
            'echo', 'depends_on': ['resize']}]}

    Attributes:
        tasks (list[WorkflowNodeRequest]): The nodes: each a task as `POST /tasks` takes it (without `id`,
            `task-id`, `countdown`, `eta` or `unique`) plus `ref`, `depends_on` and
            `on_parent_failure`.
        id (None | str | Unset): Workflow id (1-64 of letters, digits, `._-`); submitting the same id
            and body again returns the same workflow (200), another body 409.
            Default: a server UUID.
    """

    tasks: list[WorkflowNodeRequest]
    id: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        tasks = []
        for tasks_item_data in self.tasks:
            tasks_item = tasks_item_data.to_dict()
            tasks.append(tasks_item)

        id: None | str | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tasks": tasks,
            }
        )
        if id is not UNSET:
            field_dict["id"] = id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.workflow_node_request import WorkflowNodeRequest  # noqa: PLC0415

        d = dict(src_dict)
        tasks = []
        _tasks = d.pop("tasks")
        for tasks_item_data in _tasks:
            tasks_item = WorkflowNodeRequest.from_dict(tasks_item_data)

            tasks.append(tasks_item)

        def _parse_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        id = _parse_id(d.pop("id", UNSET))

        workflow_request = cls(
            tasks=tasks,
            id=id,
        )

        return workflow_request
