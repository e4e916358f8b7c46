from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="FireView")


@_attrs_define
class FireView:
    """One line of a schedule's history: what became of a tick.

    Attributes:
        at (datetime.datetime): When the line was written.
        kind (str): `tick` (the grid), `trigger` or `backfill`.
        outcome (str): `fired`, `skipped` or `buffered`.
        tick (datetime.datetime): The tick (`scheduled_for`); for a line standing for many skipped ticks, the first.
        ticks (int): How many ticks the line stands for.
        reason (None | str | Unset): Why it was skipped: `overlap`, `catchup_window` or `max_runs`.
        task_id (None | str | Unset): The fired (or buffered) task's id.
        task_status (None | str | Unset): That task's status now (null: not fired yet, or expired).
    """

    at: datetime.datetime
    kind: str
    outcome: str
    tick: datetime.datetime
    ticks: int
    reason: None | str | Unset = UNSET
    task_id: None | str | Unset = UNSET
    task_status: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        at = self.at.isoformat()

        kind = self.kind

        outcome = self.outcome

        tick = self.tick.isoformat()

        ticks = self.ticks

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        task_id: None | str | Unset
        if isinstance(self.task_id, Unset):
            task_id = UNSET
        else:
            task_id = self.task_id

        task_status: None | str | Unset
        if isinstance(self.task_status, Unset):
            task_status = UNSET
        else:
            task_status = self.task_status

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "at": at,
                "kind": kind,
                "outcome": outcome,
                "tick": tick,
                "ticks": ticks,
            }
        )
        if reason is not UNSET:
            field_dict["reason"] = reason
        if task_id is not UNSET:
            field_dict["task_id"] = task_id
        if task_status is not UNSET:
            field_dict["task_status"] = task_status

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        at = datetime.datetime.fromisoformat(d.pop("at"))

        kind = d.pop("kind")

        outcome = d.pop("outcome")

        tick = datetime.datetime.fromisoformat(d.pop("tick"))

        ticks = d.pop("ticks")

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        def _parse_task_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        task_id = _parse_task_id(d.pop("task_id", UNSET))

        def _parse_task_status(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        task_status = _parse_task_status(d.pop("task_status", UNSET))

        fire_view = cls(
            at=at,
            kind=kind,
            outcome=outcome,
            tick=tick,
            ticks=ticks,
            reason=reason,
            task_id=task_id,
            task_status=task_status,
        )

        fire_view.additional_properties = d
        return fire_view

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
