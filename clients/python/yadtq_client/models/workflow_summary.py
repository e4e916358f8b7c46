from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.workflow_status import WorkflowStatus

if TYPE_CHECKING:
    from ..models.workflow_summary_counts import WorkflowSummaryCounts


T = TypeVar("T", bound="WorkflowSummary")


@_attrs_define
class WorkflowSummary:
    """A workflow in a listing.

    Attributes:
        counts (WorkflowSummaryCounts): Nodes by task status.
        created_at (datetime.datetime): When it was submitted.
        id (str): Workflow id.
        status (WorkflowStatus): A workflow's status, computed from its nodes.
    """

    counts: WorkflowSummaryCounts
    created_at: datetime.datetime
    id: str
    status: WorkflowStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts.to_dict()

        created_at = self.created_at.isoformat()

        id = self.id

        status = self.status.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "counts": counts,
                "created_at": created_at,
                "id": id,
                "status": status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.workflow_summary_counts import WorkflowSummaryCounts  # noqa: PLC0415

        d = dict(src_dict)
        counts = WorkflowSummaryCounts.from_dict(d.pop("counts"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        status = WorkflowStatus(d.pop("status"))

        workflow_summary = cls(
            counts=counts,
            created_at=created_at,
            id=id,
            status=status,
        )

        workflow_summary.additional_properties = d
        return workflow_summary

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
