from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="TaskLimitState")


@_attrs_define
class TaskLimitState:
    """One of a task's limits, as `GET /tasks/{id}` shows it.

    Attributes:
        bucket (str): The task's bucket of the limit: the canonical JSON of the key's value,
            `(all)` for a limit without a key, `(unresolved)` when the key finds nothing.
        held (bool): The bucket has no room now (concurrency reached, rate window full or
            `concurrency: 0`): for a `held` task, a limit that holds it back. Read
            without the bucket's lock: a view, not a decision.
        name (str): The limit's name.
    """

    bucket: str
    held: bool
    name: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bucket = self.bucket

        held = self.held

        name = self.name

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bucket": bucket,
                "held": held,
                "name": name,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bucket = d.pop("bucket")

        held = d.pop("held")

        name = d.pop("name")

        task_limit_state = cls(
            bucket=bucket,
            held=held,
            name=name,
        )

        task_limit_state.additional_properties = d
        return task_limit_state

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
