from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Bucket")


@_attrs_define
class Bucket:
    """One bucket of a limit, counted from the rows now.

    Attributes:
        bucket (str): The bucket: the canonical JSON of the key's value (object keys sorted,
            no whitespace), `(all)` without a key, `(unresolved)` when the key
            finds nothing in a task's arguments.
        held (int): Its tasks `held`, waiting for room.
        releases_in_window (int): Its releases in the rate window ending now (0 without a rate).
        running (int): Its tasks `queued` or `processing` now (the slots taken).
    """

    bucket: str
    held: int
    releases_in_window: int
    running: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        bucket = self.bucket

        held = self.held

        releases_in_window = self.releases_in_window

        running = self.running

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "bucket": bucket,
                "held": held,
                "releases_in_window": releases_in_window,
                "running": running,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        bucket = d.pop("bucket")

        held = d.pop("held")

        releases_in_window = d.pop("releases_in_window")

        running = d.pop("running")

        bucket = cls(
            bucket=bucket,
            held=held,
            releases_in_window=releases_in_window,
            running=running,
        )

        bucket.additional_properties = d
        return bucket

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
