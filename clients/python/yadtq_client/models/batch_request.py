from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.submit_request import SubmitRequest


T = TypeVar("T", bound="BatchRequest")


@_attrs_define
class BatchRequest:
    """Body of `POST /tasks/batch`.

    Attributes:
        tasks (list[SubmitRequest]): The tasks, each as in `POST /tasks` (at most the configured batch size, default
            1000).
    """

    tasks: list[SubmitRequest]

    def to_dict(self) -> dict[str, Any]:
        tasks = []
        for tasks_item_data in self.tasks:
            tasks_item = tasks_item_data.to_dict()
            tasks.append(tasks_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tasks": tasks,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.submit_request import SubmitRequest  # noqa: PLC0415

        d = dict(src_dict)
        tasks = []
        _tasks = d.pop("tasks")
        for tasks_item_data in _tasks:
            tasks_item = SubmitRequest.from_dict(tasks_item_data)

            tasks.append(tasks_item)

        batch_request = cls(
            tasks=tasks,
        )

        return batch_request
