from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.bucket import Bucket
    from ..models.rate_body import RateBody


T = TypeVar("T", bound="LimitDetail")


@_attrs_define
class LimitDetail:
    """`GET /limits/{name}`: the limit and a page of its buckets, by bucket.

    Attributes:
        buckets (list[Bucket]): A page of its buckets, by bucket name; a bucket exists once a task
            took it.
        name (str): Its name.
        tasks (list[str]): As in `Limit`.
        concurrency (int | None | Unset): As in `Limit`.
        key (None | str | Unset): As in `Limit`.
        next_cursor (None | str | Unset): Pass as `cursor` for the next page of buckets; null on the last page.
        rate (None | RateBody | Unset):
    """

    buckets: list[Bucket]
    name: str
    tasks: list[str]
    concurrency: int | None | Unset = UNSET
    key: None | str | Unset = UNSET
    next_cursor: None | str | Unset = UNSET
    rate: None | RateBody | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.rate_body import RateBody  # noqa: PLC0415

        buckets = []
        for buckets_item_data in self.buckets:
            buckets_item = buckets_item_data.to_dict()
            buckets.append(buckets_item)

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

        next_cursor: None | str | Unset
        if isinstance(self.next_cursor, Unset):
            next_cursor = UNSET
        else:
            next_cursor = self.next_cursor

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
                "buckets": buckets,
                "name": name,
                "tasks": tasks,
            }
        )
        if concurrency is not UNSET:
            field_dict["concurrency"] = concurrency
        if key is not UNSET:
            field_dict["key"] = key
        if next_cursor is not UNSET:
            field_dict["next_cursor"] = next_cursor
        if rate is not UNSET:
            field_dict["rate"] = rate

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.bucket import Bucket  # noqa: PLC0415
        from ..models.rate_body import RateBody  # noqa: PLC0415

        d = dict(src_dict)
        buckets = []
        _buckets = d.pop("buckets")
        for buckets_item_data in _buckets:
            buckets_item = Bucket.from_dict(buckets_item_data)

            buckets.append(buckets_item)

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

        def _parse_next_cursor(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        next_cursor = _parse_next_cursor(d.pop("next_cursor", UNSET))

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

        limit_detail = cls(
            buckets=buckets,
            name=name,
            tasks=tasks,
            concurrency=concurrency,
            key=key,
            next_cursor=next_cursor,
            rate=rate,
        )

        limit_detail.additional_properties = d
        return limit_detail

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
