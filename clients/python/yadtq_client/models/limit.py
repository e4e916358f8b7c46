from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.rate_body import RateBody


T = TypeVar("T", bound="Limit")


@_attrs_define
class Limit:
    """A limit as declared.

    Attributes:
        name (str): Its name.
        tasks (list[str]): Task names that take the limit without naming it, sorted.
        concurrency (int | None | Unset): Tasks of one bucket running at once (`queued` or `processing`); 0:
            paused; null: no bound.
        key (None | str | Unset): The bucket key (a JSON pointer); null: one bucket, `(all)`.
        rate (None | RateBody | Unset):
    """

    name: str
    tasks: list[str]
    concurrency: int | None | Unset = UNSET
    key: None | str | Unset = UNSET
    rate: None | RateBody | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.rate_body import RateBody  # noqa: PLC0415

        name = self.name

        tasks = self.tasks

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

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "name": name,
                "tasks": tasks,
            }
        )
        if concurrency is not UNSET:
            field_dict["concurrency"] = concurrency
        if key is not UNSET:
            field_dict["key"] = key
        if rate is not UNSET:
            field_dict["rate"] = rate

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.rate_body import RateBody  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        tasks = cast(list[str], d.pop("tasks"))

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

        limit = cls(
            name=name,
            tasks=tasks,
            concurrency=concurrency,
            key=key,
            rate=rate,
        )

        limit.additional_properties = d
        return limit

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
