from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.overlap import Overlap
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.spec_input import SpecInput
    from ..models.task_template import TaskTemplate


T = TypeVar("T", bound="CreateSchedule")


@_attrs_define
class CreateSchedule:
    """Body of `POST /schedules`.

    Example:
        {'id': 'nightly-report', 'spec': {'cron': '0 2 * * *'}, 'timezone': 'Europe/Berlin', 'task': {'task': 'echo',
            'args': ['report']}}

    Attributes:
        spec (SpecInput): How a schedule's ticks are spaced, as the API takes it: exactly one of
            `cron` or `every`. Example: {'cron': '*/5 * * * *'}.
        task (TaskTemplate): The task a schedule fires, as `POST /schedules` and `PATCH` take it: a
            `POST /tasks` body without `id`, `task-id`, `countdown` or `eta` (the
            id is derived from the schedule and the tick; the tick is the start).
            For the OpenAPI document only: the gateway validates it as `POST /tasks`
            validates a body.
        catchup_window (float | None | Unset): Seconds (0 to 2592000, default 60): after downtime, missed ticks older
            than this are skipped.
        end_at (datetime.datetime | None | Unset): No tick after this.
        id (None | str | Unset): Client-chosen id (1-100 of letters, digits, `._:-`); creating the same
            id with the same body again answers 200, with another body 409.
            Default: a server UUID.
        jitter (float | None | Unset): Seconds (0 to 3600, default 0): each tick's task may start up to this
            much after its tick (the same delay for every fire of that tick).
        max_runs (int | None | Unset): Stop after this many runs.
        overlap (None | Overlap | Unset):
        paused (bool | None | Unset): Create it paused (default false).
        start_at (datetime.datetime | None | Unset): No tick before this.
        timezone (None | str | Unset): IANA time zone of the cron fields (default `UTC`).
    """

    spec: SpecInput
    task: TaskTemplate
    catchup_window: float | None | Unset = UNSET
    end_at: datetime.datetime | None | Unset = UNSET
    id: None | str | Unset = UNSET
    jitter: float | None | Unset = UNSET
    max_runs: int | None | Unset = UNSET
    overlap: None | Overlap | Unset = UNSET
    paused: bool | None | Unset = UNSET
    start_at: datetime.datetime | None | Unset = UNSET
    timezone: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec.to_dict()

        task = self.task.to_dict()

        catchup_window: float | None | Unset
        if isinstance(self.catchup_window, Unset):
            catchup_window = UNSET
        else:
            catchup_window = self.catchup_window

        end_at: None | str | Unset
        if isinstance(self.end_at, Unset):
            end_at = UNSET
        elif isinstance(self.end_at, datetime.datetime):
            end_at = self.end_at.isoformat()
        else:
            end_at = self.end_at

        id: None | str | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id

        jitter: float | None | Unset
        if isinstance(self.jitter, Unset):
            jitter = UNSET
        else:
            jitter = self.jitter

        max_runs: int | None | Unset
        if isinstance(self.max_runs, Unset):
            max_runs = UNSET
        else:
            max_runs = self.max_runs

        overlap: None | str | Unset
        if isinstance(self.overlap, Unset):
            overlap = UNSET
        elif isinstance(self.overlap, Overlap):
            overlap = self.overlap.value
        else:
            overlap = self.overlap

        paused: bool | None | Unset
        if isinstance(self.paused, Unset):
            paused = UNSET
        else:
            paused = self.paused

        start_at: None | str | Unset
        if isinstance(self.start_at, Unset):
            start_at = UNSET
        elif isinstance(self.start_at, datetime.datetime):
            start_at = self.start_at.isoformat()
        else:
            start_at = self.start_at

        timezone: None | str | Unset
        if isinstance(self.timezone, Unset):
            timezone = UNSET
        else:
            timezone = self.timezone

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "spec": spec,
                "task": task,
            }
        )
        if catchup_window is not UNSET:
            field_dict["catchup_window"] = catchup_window
        if end_at is not UNSET:
            field_dict["end_at"] = end_at
        if id is not UNSET:
            field_dict["id"] = id
        if jitter is not UNSET:
            field_dict["jitter"] = jitter
        if max_runs is not UNSET:
            field_dict["max_runs"] = max_runs
        if overlap is not UNSET:
            field_dict["overlap"] = overlap
        if paused is not UNSET:
            field_dict["paused"] = paused
        if start_at is not UNSET:
            field_dict["start_at"] = start_at
        if timezone is not UNSET:
            field_dict["timezone"] = timezone

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.spec_input import SpecInput  # noqa: PLC0415
        from ..models.task_template import TaskTemplate  # noqa: PLC0415

        d = dict(src_dict)
        spec = SpecInput.from_dict(d.pop("spec"))

        task = TaskTemplate.from_dict(d.pop("task"))

        def _parse_catchup_window(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        catchup_window = _parse_catchup_window(d.pop("catchup_window", UNSET))

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

        def _parse_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        id = _parse_id(d.pop("id", UNSET))

        def _parse_jitter(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        jitter = _parse_jitter(d.pop("jitter", UNSET))

        def _parse_max_runs(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_runs = _parse_max_runs(d.pop("max_runs", UNSET))

        def _parse_overlap(data: object) -> None | Overlap | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                overlap_type_1 = Overlap(data)

                return overlap_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Overlap | Unset, data)

        overlap = _parse_overlap(d.pop("overlap", UNSET))

        def _parse_paused(data: object) -> bool | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(bool | None | Unset, data)

        paused = _parse_paused(d.pop("paused", UNSET))

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

        def _parse_timezone(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        timezone = _parse_timezone(d.pop("timezone", UNSET))

        create_schedule = cls(
            spec=spec,
            task=task,
            catchup_window=catchup_window,
            end_at=end_at,
            id=id,
            jitter=jitter,
            max_runs=max_runs,
            overlap=overlap,
            paused=paused,
            start_at=start_at,
            timezone=timezone,
        )

        return create_schedule
