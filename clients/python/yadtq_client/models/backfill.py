from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.overlap import Overlap
from ..types import UNSET, Unset

T = TypeVar("T", bound="Backfill")


@_attrs_define
class Backfill:
    """Body of `POST /schedules/{id}/backfill`.

    Attributes:
        end (datetime.datetime): Last time of the range (included); at most 1000 ticks in the range.
        start (datetime.datetime): First time of the range (included).
        overlap (None | Overlap | Unset):
    """

    end: datetime.datetime
    start: datetime.datetime
    overlap: None | Overlap | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        end = self.end.isoformat()

        start = self.start.isoformat()

        overlap: None | str | Unset
        if isinstance(self.overlap, Unset):
            overlap = UNSET
        elif isinstance(self.overlap, Overlap):
            overlap = self.overlap.value
        else:
            overlap = self.overlap

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "end": end,
                "start": start,
            }
        )
        if overlap is not UNSET:
            field_dict["overlap"] = overlap

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        end = datetime.datetime.fromisoformat(d.pop("end"))

        start = datetime.datetime.fromisoformat(d.pop("start"))

        def _parse_overlap(data: object) -> None | Overlap | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                overlap_type_1 = Overlap(data)

                return overlap_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Overlap | Unset, data)

        overlap = _parse_overlap(d.pop("overlap", UNSET))

        backfill = cls(
            end=end,
            start=start,
            overlap=overlap,
        )

        return backfill
