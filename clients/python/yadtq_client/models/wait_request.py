from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.until import Until
from ..types import UNSET, Unset

T = TypeVar("T", bound="WaitRequest")


@_attrs_define
class WaitRequest:
    """Body of `POST /tasks/wait`.

    Attributes:
        ids (list[str]): Task ids (1 to 1,000).
        timeout (float | None | Unset): Seconds to wait at most, 0 to 60 (default 30).
        until (Until | Unset): Until when `POST /tasks/wait` waits.
    """

    ids: list[str]
    timeout: float | None | Unset = UNSET
    until: Until | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        ids = self.ids

        timeout: float | None | Unset
        if isinstance(self.timeout, Unset):
            timeout = UNSET
        else:
            timeout = self.timeout

        until: str | Unset = UNSET
        if not isinstance(self.until, Unset):
            until = self.until.value

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "ids": ids,
            }
        )
        if timeout is not UNSET:
            field_dict["timeout"] = timeout
        if until is not UNSET:
            field_dict["until"] = until

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        ids = cast(list[str], d.pop("ids"))

        def _parse_timeout(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        timeout = _parse_timeout(d.pop("timeout", UNSET))

        _until = d.pop("until", UNSET)
        until: Until | Unset
        if isinstance(_until, Unset):
            until = UNSET
        else:
            until = Until(_until)

        wait_request = cls(
            ids=ids,
            timeout=timeout,
            until=until,
        )

        return wait_request
