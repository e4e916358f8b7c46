from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Minute")


@_attrs_define
class Minute:
    """Tasks finished in one minute, by outcome.

    Attributes:
        cancelled (int): Tasks cancelled.
        failed (int): Tasks that failed (retries spent, or a permanent error).
        minute (datetime.datetime): Start of the minute (database clock).
        success (int): Tasks that succeeded.
    """

    cancelled: int
    failed: int
    minute: datetime.datetime
    success: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        cancelled = self.cancelled

        failed = self.failed

        minute = self.minute.isoformat()

        success = self.success

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "cancelled": cancelled,
                "failed": failed,
                "minute": minute,
                "success": success,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        cancelled = d.pop("cancelled")

        failed = d.pop("failed")

        minute = datetime.datetime.fromisoformat(d.pop("minute"))

        success = d.pop("success")

        minute = cls(
            cancelled=cancelled,
            failed=failed,
            minute=minute,
            success=success,
        )

        minute.additional_properties = d
        return minute

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
