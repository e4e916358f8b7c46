from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.dead_letter import DeadLetter


T = TypeVar("T", bound="DeadLetters")


@_attrs_define
class DeadLetters:
    """A page of dead letters, newest first, and what the topic holds.

    Attributes:
        dead_letters (list[DeadLetter]): The records read, newest first.
        retained (int): Records the topic still holds (retention deletes the oldest), over all partitions.
        topic (str): The dead-letter topic's name.
        next_before (int | None | Unset): Pass as `before` to read on: the page is full, or the read stopped
            at its budget (`--dead-letter-scan-records`, or half the read
            timeout) before the start of the topic, which happens when the
            caller's filter keeps few records (a tenant's among many); the page
            may then hold fewer records than asked, even none. Null when nothing
            older is left. With one partition (yadtq creates the topic so) pages
            neither overlap nor skip a record; with several, a page may repeat
            some of the previous one's older records.
    """

    dead_letters: list[DeadLetter]
    retained: int
    topic: str
    next_before: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        dead_letters = []
        for dead_letters_item_data in self.dead_letters:
            dead_letters_item = dead_letters_item_data.to_dict()
            dead_letters.append(dead_letters_item)

        retained = self.retained

        topic = self.topic

        next_before: int | None | Unset
        if isinstance(self.next_before, Unset):
            next_before = UNSET
        else:
            next_before = self.next_before

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "dead_letters": dead_letters,
                "retained": retained,
                "topic": topic,
            }
        )
        if next_before is not UNSET:
            field_dict["next_before"] = next_before

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.dead_letter import DeadLetter  # noqa: PLC0415

        d = dict(src_dict)
        dead_letters = []
        _dead_letters = d.pop("dead_letters")
        for dead_letters_item_data in _dead_letters:
            dead_letters_item = DeadLetter.from_dict(dead_letters_item_data)

            dead_letters.append(dead_letters_item)

        retained = d.pop("retained")

        topic = d.pop("topic")

        def _parse_next_before(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        next_before = _parse_next_before(d.pop("next_before", UNSET))

        dead_letters = cls(
            dead_letters=dead_letters,
            retained=retained,
            topic=topic,
            next_before=next_before,
        )

        dead_letters.additional_properties = d
        return dead_letters

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
