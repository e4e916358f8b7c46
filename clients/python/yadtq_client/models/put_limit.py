from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.rate_body import RateBody


T = TypeVar("T", bound="PutLimit")


@_attrs_define
class PutLimit:
    """Body of `PUT /limits/{name}`: the whole limit (absent fields are unset, not kept). At least one of `concurrency` and
    `rate` (null counts as absent).

        Example:
            {'concurrency': 5, 'key': '/kwargs/customer_id'}

        Attributes:
            concurrency (int | None | Unset): Tasks of one bucket `queued` or `processing` at once; 0 pauses every
                bucket of the limit. Absent: no bound on concurrency (then `rate` is
                required).
            key (None | str | Unset): The bucket key: a JSON pointer (RFC 6901) into the task's
                `{"args": [...], "kwargs": {...}}`, starting `/args` or `/kwargs`, at
                most 256 characters; one bucket per value. Absent: one bucket, `(all)`.
                Cannot change once the limit exists (409): delete it and create another.
            rate (None | RateBody | Unset):
            tasks (list[str] | None | Unset): Task names that take the limit without naming it, for tasks submitted
                after this `PUT`; at most `YADTQ_MAX_LIMIT_TASKS` (default 100).
                Absent: none.
    """

    concurrency: int | None | Unset = UNSET
    key: None | str | Unset = UNSET
    rate: None | RateBody | Unset = UNSET
    tasks: list[str] | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.rate_body import RateBody  # noqa: PLC0415

        concurrency: int | None | Unset
        if isinstance(self.concurrency, Unset):
            concurrency = UNSET
        else:
            concurrency = self.concurrency

        key: None | str | Unset
        if isinstance(self.key, Unset):
            key = UNSET
        else:
            key = self.key

        rate: dict[str, Any] | None | Unset
        if isinstance(self.rate, Unset):
            rate = UNSET
        elif isinstance(self.rate, RateBody):
            rate = self.rate.to_dict()
        else:
            rate = self.rate

        tasks: list[str] | None | Unset
        if isinstance(self.tasks, Unset):
            tasks = UNSET
        elif isinstance(self.tasks, list):
            tasks = self.tasks

        else:
            tasks = self.tasks

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if concurrency is not UNSET:
            field_dict["concurrency"] = concurrency
        if key is not UNSET:
            field_dict["key"] = key
        if rate is not UNSET:
            field_dict["rate"] = rate
        if tasks is not UNSET:
            field_dict["tasks"] = tasks

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.rate_body import RateBody  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_concurrency(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        concurrency = _parse_concurrency(d.pop("concurrency", UNSET))

        def _parse_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        key = _parse_key(d.pop("key", UNSET))

        def _parse_rate(data: object) -> None | RateBody | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                rate_type_1 = RateBody.from_dict(data)

                return rate_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RateBody | Unset, data)

        rate = _parse_rate(d.pop("rate", UNSET))

        def _parse_tasks(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                tasks_type_0 = cast(list[str], data)

                return tasks_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        tasks = _parse_tasks(d.pop("tasks", UNSET))

        put_limit = cls(
            concurrency=concurrency,
            key=key,
            rate=rate,
            tasks=tasks,
        )

        return put_limit
