from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="RateBody")


@_attrs_define
class RateBody:
    """A rate: `count` releases per `per_seconds`.

    Attributes:
        count (int): Releases of one bucket allowed per window, at least 1.
        per_seconds (float): The window, seconds: more than 0, at most 31536000 (a year).
    """

    count: int
    per_seconds: float

    def to_dict(self) -> dict[str, Any]:
        count = self.count

        per_seconds = self.per_seconds

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "count": count,
                "per_seconds": per_seconds,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        count = d.pop("count")

        per_seconds = d.pop("per_seconds")

        rate_body = cls(
            count=count,
            per_seconds=per_seconds,
        )

        return rate_body
