from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.workflow import Workflow


T = TypeVar("T", bound="WorkflowCancelled")


@_attrs_define
class WorkflowCancelled:
    """What `POST /workflows/{id}/cancel` did.

    Attributes:
        cancelled (int): Nodes cancelled at once (they had not started).
        requested (int): Running nodes whose cancel was requested (their workers abort them).
        workflow (Workflow): A workflow: its status, node counts by status and its nodes.
    """

    cancelled: int
    requested: int
    workflow: Workflow
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cancelled = self.cancelled

        requested = self.requested

        workflow = self.workflow.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "cancelled": cancelled,
                "requested": requested,
                "workflow": workflow,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.workflow import Workflow  # noqa: PLC0415

        d = dict(src_dict)
        cancelled = d.pop("cancelled")

        requested = d.pop("requested")

        workflow = Workflow.from_dict(d.pop("workflow"))

        workflow_cancelled = cls(
            cancelled=cancelled,
            requested=requested,
            workflow=workflow,
        )

        workflow_cancelled.additional_properties = d
        return workflow_cancelled

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
