from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.workflow_status import WorkflowStatus

if TYPE_CHECKING:
    from ..models.node_state import NodeState
    from ..models.workflow_counts import WorkflowCounts


T = TypeVar("T", bound="Workflow")


@_attrs_define
class Workflow:
    """A workflow: its status, node counts by status and its nodes.

    Attributes:
        counts (WorkflowCounts): Nodes by task status.
        created_at (datetime.datetime): When it was submitted.
        id (str): Workflow id.
        nodes (list[NodeState]): The nodes, in the order submitted.
        status (WorkflowStatus): A workflow's status, computed from its nodes.
    """

    counts: WorkflowCounts
    created_at: datetime.datetime
    id: str
    nodes: list[NodeState]
    status: WorkflowStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts.to_dict()

        created_at = self.created_at.isoformat()

        id = self.id

        nodes = []
        for nodes_item_data in self.nodes:
            nodes_item = nodes_item_data.to_dict()
            nodes.append(nodes_item)

        status = self.status.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "counts": counts,
                "created_at": created_at,
                "id": id,
                "nodes": nodes,
                "status": status,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.node_state import NodeState  # noqa: PLC0415
        from ..models.workflow_counts import WorkflowCounts  # noqa: PLC0415

        d = dict(src_dict)
        counts = WorkflowCounts.from_dict(d.pop("counts"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        nodes = []
        _nodes = d.pop("nodes")
        for nodes_item_data in _nodes:
            nodes_item = NodeState.from_dict(nodes_item_data)

            nodes.append(nodes_item)

        status = WorkflowStatus(d.pop("status"))

        workflow = cls(
            counts=counts,
            created_at=created_at,
            id=id,
            nodes=nodes,
            status=status,
        )

        workflow.additional_properties = d
        return workflow

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
