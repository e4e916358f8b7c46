from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.overlap import Overlap
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.fire_view import FireView
    from ..models.spec_input import SpecInput
    from ..models.template_view import TemplateView


T = TypeVar("T", bound="Schedule")


@_attrs_define
class Schedule:
    """A schedule.

    Attributes:
        buffered (list[datetime.datetime]): Ticks buffered behind a running task (buffer policies), oldest first.
        catchup_window (float): Catch-up window, seconds.
        created_at (datetime.datetime): Creation time.
        id (str): Its id.
        jitter (float): Jitter, seconds.
        next_fire_times (list[datetime.datetime]): The next fire times (up to 5; empty when paused or finished).
        overlap (Overlap): What happens when a run is due while the schedule's previous task is not terminal.
        paused (bool): Paused: fires nothing.
        runs (int): Tasks fired so far.
        skipped (int): Ticks skipped so far (overlap, catch-up window, run limit).
        spec (SpecInput): How a schedule's ticks are spaced, as the API takes it: exactly one of
            `cron` or `every`. Example: {'cron': '*/5 * * * *'}.
        task (TemplateView): The task a schedule fires.
        timezone (str): IANA time zone of the cron fields.
        updated_at (datetime.datetime): Last change (edit or fire).
        version (int): Bumped by every edit.
        end_at (datetime.datetime | None | Unset): No tick after this.
        last_task_id (None | str | Unset): The task fired last.
        max_runs (int | None | Unset): Run limit.
        recent_fires (list[FireView] | None | Unset): The latest history lines, newest first (`GET /schedules/{id}`
            only).
        start_at (datetime.datetime | None | Unset): No tick before this.
    """

    buffered: list[datetime.datetime]
    catchup_window: float
    created_at: datetime.datetime
    id: str
    jitter: float
    next_fire_times: list[datetime.datetime]
    overlap: Overlap
    paused: bool
    runs: int
    skipped: int
    spec: SpecInput
    task: TemplateView
    timezone: str
    updated_at: datetime.datetime
    version: int
    end_at: datetime.datetime | None | Unset = UNSET
    last_task_id: None | str | Unset = UNSET
    max_runs: int | None | Unset = UNSET
    recent_fires: list[FireView] | None | Unset = UNSET
    start_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        buffered = []
        for buffered_item_data in self.buffered:
            buffered_item = buffered_item_data.isoformat()
            buffered.append(buffered_item)

        catchup_window = self.catchup_window

        created_at = self.created_at.isoformat()

        id = self.id

        jitter = self.jitter

        next_fire_times = []
        for next_fire_times_item_data in self.next_fire_times:
            next_fire_times_item = next_fire_times_item_data.isoformat()
            next_fire_times.append(next_fire_times_item)

        overlap = self.overlap.value

        paused = self.paused

        runs = self.runs

        skipped = self.skipped

        spec = self.spec.to_dict()

        task = self.task.to_dict()

        timezone = self.timezone

        updated_at = self.updated_at.isoformat()

        version = self.version

        end_at: None | str | Unset
        if isinstance(self.end_at, Unset):
            end_at = UNSET
        elif isinstance(self.end_at, datetime.datetime):
            end_at = self.end_at.isoformat()
        else:
            end_at = self.end_at

        last_task_id: None | str | Unset
        if isinstance(self.last_task_id, Unset):
            last_task_id = UNSET
        else:
            last_task_id = self.last_task_id

        max_runs: int | None | Unset
        if isinstance(self.max_runs, Unset):
            max_runs = UNSET
        else:
            max_runs = self.max_runs

        recent_fires: list[dict[str, Any]] | None | Unset
        if isinstance(self.recent_fires, Unset):
            recent_fires = UNSET
        elif isinstance(self.recent_fires, list):
            recent_fires = []
            for recent_fires_type_0_item_data in self.recent_fires:
                recent_fires_type_0_item = recent_fires_type_0_item_data.to_dict()
                recent_fires.append(recent_fires_type_0_item)

        else:
            recent_fires = self.recent_fires

        start_at: None | str | Unset
        if isinstance(self.start_at, Unset):
            start_at = UNSET
        elif isinstance(self.start_at, datetime.datetime):
            start_at = self.start_at.isoformat()
        else:
            start_at = self.start_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "buffered": buffered,
                "catchup_window": catchup_window,
                "created_at": created_at,
                "id": id,
                "jitter": jitter,
                "next_fire_times": next_fire_times,
                "overlap": overlap,
                "paused": paused,
                "runs": runs,
                "skipped": skipped,
                "spec": spec,
                "task": task,
                "timezone": timezone,
                "updated_at": updated_at,
                "version": version,
            }
        )
        if end_at is not UNSET:
            field_dict["end_at"] = end_at
        if last_task_id is not UNSET:
            field_dict["last_task_id"] = last_task_id
        if max_runs is not UNSET:
            field_dict["max_runs"] = max_runs
        if recent_fires is not UNSET:
            field_dict["recent_fires"] = recent_fires
        if start_at is not UNSET:
            field_dict["start_at"] = start_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.fire_view import FireView  # noqa: PLC0415
        from ..models.spec_input import SpecInput  # noqa: PLC0415
        from ..models.template_view import TemplateView  # noqa: PLC0415

        d = dict(src_dict)
        buffered = []
        _buffered = d.pop("buffered")
        for buffered_item_data in _buffered:
            buffered_item = datetime.datetime.fromisoformat(buffered_item_data)

            buffered.append(buffered_item)

        catchup_window = d.pop("catchup_window")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        jitter = d.pop("jitter")

        next_fire_times = []
        _next_fire_times = d.pop("next_fire_times")
        for next_fire_times_item_data in _next_fire_times:
            next_fire_times_item = datetime.datetime.fromisoformat(next_fire_times_item_data)

            next_fire_times.append(next_fire_times_item)

        overlap = Overlap(d.pop("overlap"))

        paused = d.pop("paused")

        runs = d.pop("runs")

        skipped = d.pop("skipped")

        spec = SpecInput.from_dict(d.pop("spec"))

        task = TemplateView.from_dict(d.pop("task"))

        timezone = d.pop("timezone")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        version = d.pop("version")

        def _parse_end_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                end_at_type_0 = datetime.datetime.fromisoformat(data)

                return end_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        end_at = _parse_end_at(d.pop("end_at", UNSET))

        def _parse_last_task_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        last_task_id = _parse_last_task_id(d.pop("last_task_id", UNSET))

        def _parse_max_runs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_runs = _parse_max_runs(d.pop("max_runs", UNSET))

        def _parse_recent_fires(data: object) -> list[FireView] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                recent_fires_type_0 = []
                _recent_fires_type_0 = data
                for recent_fires_type_0_item_data in _recent_fires_type_0:
                    recent_fires_type_0_item = FireView.from_dict(recent_fires_type_0_item_data)

                    recent_fires_type_0.append(recent_fires_type_0_item)

                return recent_fires_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[FireView] | None | Unset, data)

        recent_fires = _parse_recent_fires(d.pop("recent_fires", UNSET))

        def _parse_start_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                start_at_type_0 = datetime.datetime.fromisoformat(data)

                return start_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        start_at = _parse_start_at(d.pop("start_at", UNSET))

        schedule = cls(
            buffered=buffered,
            catchup_window=catchup_window,
            created_at=created_at,
            id=id,
            jitter=jitter,
            next_fire_times=next_fire_times,
            overlap=overlap,
            paused=paused,
            runs=runs,
            skipped=skipped,
            spec=spec,
            task=task,
            timezone=timezone,
            updated_at=updated_at,
            version=version,
            end_at=end_at,
            last_task_id=last_task_id,
            max_runs=max_runs,
            recent_fires=recent_fires,
            start_at=start_at,
        )

        schedule.additional_properties = d
        return schedule

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
