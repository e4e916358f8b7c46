from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="SpecInput")


@_attrs_define
class SpecInput:
    """How a schedule's ticks are spaced, as the API takes it: exactly one of
    `cron` or `every`.

        Example:
            {'cron': '*/5 * * * *'}

        Attributes:
            cron (None | str | Unset): A cron pattern: 5 fields (minute hour day-of-month month day-of-week)
                or 6 with seconds first; names (`MON`, `JAN`), `L`, `W`, `#` and the
                `@daily` nicknames as croner reads them. Local to the schedule's `timezone`.
            every (int | None | Unset): Seconds between ticks (1 to 315360000, ten years): ticks at
                `offset + k * every` seconds after the Unix epoch, whatever the time zone.
            offset (int | None | Unset): With `every`: seconds after each multiple of `every` (0 to `every` - 1, default 0).
    """

    cron: None | str | Unset = UNSET
    every: int | None | Unset = UNSET
    offset: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        cron: None | str | Unset
        if isinstance(self.cron, Unset):
            cron = UNSET
        else:
            cron = self.cron

        every: int | None | Unset
        if isinstance(self.every, Unset):
            every = UNSET
        else:
            every = self.every

        offset: int | None | Unset
        if isinstance(self.offset, Unset):
            offset = UNSET
        else:
            offset = self.offset

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if cron is not UNSET:
            field_dict["cron"] = cron
        if every is not UNSET:
            field_dict["every"] = every
        if offset is not UNSET:
            field_dict["offset"] = offset

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_cron(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        cron = _parse_cron(d.pop("cron", UNSET))

        def _parse_every(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        every = _parse_every(d.pop("every", UNSET))

        def _parse_offset(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        offset = _parse_offset(d.pop("offset", UNSET))

        spec_input = cls(
            cron=cron,
            every=every,
            offset=offset,
        )

        return spec_input
