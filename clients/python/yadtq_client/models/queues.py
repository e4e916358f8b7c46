from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.queue_overview import QueueOverview


T = TypeVar("T", bound="Queues")


@_attrs_define
class Queues:
    """Every queue: the ones the gateways declare and any that holds tasks.

    Attributes:
        minutes (int): The throughput window, minutes.
        queues (list[QueueOverview]): The queues, by name.
        kafka_error (None | str | Unset): Why `consumer_lag` is null, when Kafka did not answer within the
            gateway's `--lag-read-timeout` (2 s by default).
    """

    minutes: int
    queues: list[QueueOverview]
    kafka_error: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        minutes = self.minutes

        queues = []
        for queues_item_data in self.queues:
            queues_item = queues_item_data.to_dict()
            queues.append(queues_item)

        kafka_error: None | str | Unset
        if isinstance(self.kafka_error, Unset):
            kafka_error = UNSET
        else:
            kafka_error = self.kafka_error

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "minutes": minutes,
                "queues": queues,
            }
        )
        if kafka_error is not UNSET:
            field_dict["kafka_error"] = kafka_error

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.queue_overview import QueueOverview  # noqa: PLC0415

        d = dict(src_dict)
        minutes = d.pop("minutes")

        queues = []
        _queues = d.pop("queues")
        for queues_item_data in _queues:
            queues_item = QueueOverview.from_dict(queues_item_data)

            queues.append(queues_item)

        def _parse_kafka_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        kafka_error = _parse_kafka_error(d.pop("kafka_error", UNSET))

        queues = cls(
            minutes=minutes,
            queues=queues,
            kafka_error=kafka_error,
        )

        queues.additional_properties = d
        return queues

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
