from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="DeadLetter")


@_attrs_define
class DeadLetter:
    """One record of the dead-letter topic: a record a worker found on a task
    topic that is not a valid envelope, copied with its key and value.

        Attributes:
            offset (int): Offset in that partition; with `partition`, the dead letter's address.
            partition (int): Partition of the dead-letter topic.
            payload_bytes (int): Size of the whole value, bytes.
            truncated (bool): True when `payload` was cut.
            key (None | str | Unset): The original record's key (for yadtq's own records, the task id), as
                UTF-8 text with invalid bytes replaced.
            origin (None | str | Unset): Where it was read: `topic/partition/offset` of the task topic.
            payload (None | str | Unset): The record's value as UTF-8 text (invalid bytes replaced), cut to the
                reader's preview length; null when the record had no value.
            reason (None | str | Unset): Why the worker refused it (`invalid envelope: …`, `unknown envelope version 2`).
            timestamp (datetime.datetime | None | Unset): When it was dead-lettered (the record's timestamp), if it has one.
    """

    offset: int
    partition: int
    payload_bytes: int
    truncated: bool
    key: None | str | Unset = UNSET
    origin: None | str | Unset = UNSET
    payload: None | str | Unset = UNSET
    reason: None | str | Unset = UNSET
    timestamp: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        offset = self.offset

        partition = self.partition

        payload_bytes = self.payload_bytes

        truncated = self.truncated

        key: None | str | Unset
        if isinstance(self.key, Unset):
            key = UNSET
        else:
            key = self.key

        origin: None | str | Unset
        if isinstance(self.origin, Unset):
            origin = UNSET
        else:
            origin = self.origin

        payload: None | str | Unset
        if isinstance(self.payload, Unset):
            payload = UNSET
        else:
            payload = self.payload

        reason: None | str | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        else:
            reason = self.reason

        timestamp: None | str | Unset
        if isinstance(self.timestamp, Unset):
            timestamp = UNSET
        elif isinstance(self.timestamp, datetime.datetime):
            timestamp = self.timestamp.isoformat()
        else:
            timestamp = self.timestamp

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "offset": offset,
                "partition": partition,
                "payload_bytes": payload_bytes,
                "truncated": truncated,
            }
        )
        if key is not UNSET:
            field_dict["key"] = key
        if origin is not UNSET:
            field_dict["origin"] = origin
        if payload is not UNSET:
            field_dict["payload"] = payload
        if reason is not UNSET:
            field_dict["reason"] = reason
        if timestamp is not UNSET:
            field_dict["timestamp"] = timestamp

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        offset = d.pop("offset")

        partition = d.pop("partition")

        payload_bytes = d.pop("payload_bytes")

        truncated = d.pop("truncated")

        def _parse_key(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        key = _parse_key(d.pop("key", UNSET))

        def _parse_origin(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        origin = _parse_origin(d.pop("origin", UNSET))

        def _parse_payload(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        payload = _parse_payload(d.pop("payload", UNSET))

        def _parse_reason(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))

        def _parse_timestamp(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                timestamp_type_0 = datetime.datetime.fromisoformat(data)

                return timestamp_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        timestamp = _parse_timestamp(d.pop("timestamp", UNSET))

        dead_letter = cls(
            offset=offset,
            partition=partition,
            payload_bytes=payload_bytes,
            truncated=truncated,
            key=key,
            origin=origin,
            payload=payload,
            reason=reason,
            timestamp=timestamp,
        )

        dead_letter.additional_properties = d
        return dead_letter

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
