from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Health")


@_attrs_define
class Health:
    """Health or readiness report.

    Attributes:
        status (str): `ok`, `ready` or `unavailable`.
        kafka (None | str | Unset): `up`, or `down: <reason>` (readiness only).
        postgres (None | str | Unset): `up` or `down` (readiness only).
    """

    status: str
    kafka: None | str | Unset = UNSET
    postgres: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status = self.status

        kafka: None | str | Unset
        if isinstance(self.kafka, Unset):
            kafka = UNSET
        else:
            kafka = self.kafka

        postgres: None | str | Unset
        if isinstance(self.postgres, Unset):
            postgres = UNSET
        else:
            postgres = self.postgres

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "status": status,
            }
        )
        if kafka is not UNSET:
            field_dict["kafka"] = kafka
        if postgres is not UNSET:
            field_dict["postgres"] = postgres

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        status = d.pop("status")

        def _parse_kafka(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        kafka = _parse_kafka(d.pop("kafka", UNSET))

        def _parse_postgres(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        postgres = _parse_postgres(d.pop("postgres", UNSET))

        health = cls(
            status=status,
            kafka=kafka,
            postgres=postgres,
        )

        health.additional_properties = d
        return health

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
