from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.task import Task


T = TypeVar("T", bound="BatchResponse")


@_attrs_define
class BatchResponse:
    """Answer of `POST /tasks/batch`: every task, in request order.

    Attributes:
        tasks (list[Task]): The tasks as stored (an idempotent repeat returns the original).
        unique_existing (list[int] | Unset): Positions (from 0) in `tasks` of the tasks that are the existing
            holder of their item's `unique` key, nothing created for that item:
            an earlier task's, or an earlier item's of this batch (two items with
            one key: the second answers the first's task). Empty when none.
    """

    tasks: list[Task]
    unique_existing: list[int] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        tasks = []
        for tasks_item_data in self.tasks:
            tasks_item = tasks_item_data.to_dict()
            tasks.append(tasks_item)

        unique_existing: list[int] | Unset = UNSET
        if not isinstance(self.unique_existing, Unset):
            unique_existing = self.unique_existing

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "tasks": tasks,
            }
        )
        if unique_existing is not UNSET:
            field_dict["unique_existing"] = unique_existing

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task import Task  # noqa: PLC0415

        d = dict(src_dict)
        tasks = []
        _tasks = d.pop("tasks")
        for tasks_item_data in _tasks:
            tasks_item = Task.from_dict(tasks_item_data)

            tasks.append(tasks_item)

        unique_existing = cast(list[int], d.pop("unique_existing", UNSET))

        batch_response = cls(
            tasks=tasks,
            unique_existing=unique_existing,
        )

        batch_response.additional_properties = d
        return batch_response

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
