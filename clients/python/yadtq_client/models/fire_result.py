from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="FireResult")


@_attrs_define
class FireResult:
    """What a trigger or a backfill did.

    Attributes:
        buffered (int): Runs buffered behind the running task.
        fired (list[str]): Ids of the tasks fired, in tick order.
        skipped (int): Runs skipped (by the overlap policy, the run limit, or the template's
            unique key held by another task).
    """

    buffered: int
    fired: list[str]
    skipped: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        buffered = self.buffered

        fired = self.fired

        skipped = self.skipped

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "buffered": buffered,
                "fired": fired,
                "skipped": skipped,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        buffered = d.pop("buffered")

        fired = cast(list[str], d.pop("fired"))

        skipped = d.pop("skipped")

        fire_result = cls(
            buffered=buffered,
            fired=fired,
            skipped=skipped,
        )

        fire_result.additional_properties = d
        return fire_result

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
