from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.task_status import TaskStatus
from ..types import UNSET, Unset

T = TypeVar("T", bound="UniqueRequest")


@_attrs_define
class UniqueRequest:
    """At most one task of this tenant and task name holds the key at a time:
    a repeat while that task holds it answers 200 with it (header
    `Yadtq-Unique: existing`) instead of creating one. Every status but
    `success`, `failed` and `cancelled` holds the key (statuses added later
    included); `while` adds terminal ones. When `id` names another existing
    task, the unique match wins. `{}` takes the default key.

        Example:
            {'key': 'sync-customer-42'}

        Attributes:
            for_seconds (int | None | Unset): The key holds within a time bucket of this many seconds only
                (`floor(epoch / for_seconds)` of the database clock, so a new bucket
                admits a new task). At least 1.
            key (None | str | Unset): The key (1 to `YADTQ_MAX_UNIQUE_KEY_LEN` characters, default 256, no
                control characters). Default: the SHA-256 of the canonical JSON of
                `task`, `args`, `kwargs` and `queue` (object keys sorted, no spaces).
            while_ (list[TaskStatus] | None | Unset): Terminal statuses that also hold the key (e.g. `["success"]` with
                `for_seconds: 3600`: at most one successful task per hour). Names of
                non-terminal statuses change nothing: they always hold it.
    """

    for_seconds: int | None | Unset = UNSET
    key: None | str | Unset = UNSET
    while_: list[TaskStatus] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        for_seconds: int | None | Unset
        if isinstance(self.for_seconds, Unset):
            for_seconds = UNSET
        else:
            for_seconds = self.for_seconds

        key: None | str | Unset
        if isinstance(self.key, Unset):
            key = UNSET
        else:
            key = self.key

        while_: list[str] | None | Unset
        if isinstance(self.while_, Unset):
            while_ = UNSET
        elif isinstance(self.while_, list):
            while_ = []
            for while_type_0_item_data in self.while_:
                while_type_0_item = while_type_0_item_data.value
                while_.append(while_type_0_item)

        else:
            while_ = self.while_

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if for_seconds is not UNSET:
            field_dict["for_seconds"] = for_seconds
        if key is not UNSET:
            field_dict["key"] = key
        if while_ is not UNSET:
            field_dict["while"] = while_

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)

        def _parse_for_seconds(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        for_seconds = _parse_for_seconds(d.pop("for_seconds", UNSET))

        def _parse_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        key = _parse_key(d.pop("key", UNSET))

        def _parse_while_(data: object) -> list[TaskStatus] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                while_type_0 = []
                _while_type_0 = data
                for while_type_0_item_data in _while_type_0:
                    while_type_0_item = TaskStatus(while_type_0_item_data)

                    while_type_0.append(while_type_0_item)

                return while_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[TaskStatus] | None | Unset, data)

        while_ = _parse_while_(d.pop("while", UNSET))

        unique_request = cls(
            for_seconds=for_seconds,
            key=key,
            while_=while_,
        )

        return unique_request
