from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.task_status import TaskStatus

T = TypeVar("T", bound="NodeState")


@_attrs_define
class NodeState:
    """A node in a workflow answer.

    Attributes:
        depends_on (list[str]): Refs of its parents.
        id (str): Its task id (`wf:<workflow id>:<ref>`): `GET /tasks/{id}` reads it.
        ref (str): The node's ref.
        status (str | TaskStatus): Lifecycle status: one of `TaskStatus`, or a status this release does not know (a
            newer release's), passed through verbatim and not terminal.
    """

    depends_on: list[str]
    id: str
    ref: str
    status: str | TaskStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        depends_on = self.depends_on

        id = self.id

        ref = self.ref

        status: str
        if isinstance(self.status, TaskStatus):
            status = self.status.value
        else:
            status = self.status

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "depends_on": depends_on,
                "id": id,
                "ref": ref,
                "status": status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        depends_on = cast(list[str], d.pop("depends_on"))

        id = d.pop("id")

        ref = d.pop("ref")

        def _parse_status(data: object) -> str | TaskStatus:
            try:
                if not isinstance(data, str):
                    raise TypeError()
                status_type_0 = TaskStatus(data)

                return status_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(str | TaskStatus, data)

        status = _parse_status(d.pop("status"))

        node_state = cls(
            depends_on=depends_on,
            id=id,
            ref=ref,
            status=status,
        )

        node_state.additional_properties = d
        return node_state

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
