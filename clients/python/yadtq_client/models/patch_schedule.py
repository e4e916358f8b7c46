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


T = TypeVar("T", bound="PatchSchedule")


@_attrs_define
class PatchSchedule:
    """Body of `PATCH /schedules/{id}`: the fields to change (absent or null: unchanged).

    Attributes:
        catchup_window (float | None | Unset): New catch-up window, seconds.
        end_at (datetime.datetime | None | Unset): New end.
        jitter (float | None | Unset): New jitter, seconds.
        max_runs (int | None | Unset): New run limit.
        overlap (None | Overlap | Unset):
        paused (bool | None | Unset): Pause (true) or resume (false); resuming does not catch up the paused ticks.
        spec (None | SpecInput | Unset):
        start_at (datetime.datetime | None | Unset): New start.
        task (None | TaskTemplate | Unset):
        timezone (None | str | Unset): New time zone.
    """

    catchup_window: float | None | Unset = UNSET
    end_at: datetime.datetime | None | Unset = UNSET
    jitter: float | None | Unset = UNSET
    max_runs: int | None | Unset = UNSET
    overlap: None | Overlap | Unset = UNSET
    paused: bool | None | Unset = UNSET
    spec: None | SpecInput | Unset = UNSET
    start_at: datetime.datetime | None | Unset = UNSET
    task: None | TaskTemplate | Unset = UNSET
    timezone: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.spec_input import SpecInput  # noqa: PLC0415
        from ..models.task_template import TaskTemplate  # noqa: PLC0415

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

        spec: dict[str, Any] | None | Unset
        if isinstance(self.spec, Unset):
            spec = UNSET
        elif isinstance(self.spec, SpecInput):
            spec = self.spec.to_dict()
        else:
            spec = self.spec

        start_at: None | str | Unset
        if isinstance(self.start_at, Unset):
            start_at = UNSET
        elif isinstance(self.start_at, datetime.datetime):
            start_at = self.start_at.isoformat()
        else:
            start_at = self.start_at

        task: dict[str, Any] | None | Unset
        if isinstance(self.task, Unset):
            task = UNSET
        elif isinstance(self.task, TaskTemplate):
            task = self.task.to_dict()
        else:
            task = self.task

        timezone: None | str | Unset
        if isinstance(self.timezone, Unset):
            timezone = UNSET
        else:
            timezone = self.timezone

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if catchup_window is not UNSET:
            field_dict["catchup_window"] = catchup_window
        if end_at is not UNSET:
            field_dict["end_at"] = end_at
        if jitter is not UNSET:
            field_dict["jitter"] = jitter
        if max_runs is not UNSET:
            field_dict["max_runs"] = max_runs
        if overlap is not UNSET:
            field_dict["overlap"] = overlap
        if paused is not UNSET:
            field_dict["paused"] = paused
        if spec is not UNSET:
            field_dict["spec"] = spec
        if start_at is not UNSET:
            field_dict["start_at"] = start_at
        if task is not UNSET:
            field_dict["task"] = task
        if timezone is not UNSET:
            field_dict["timezone"] = timezone

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.spec_input import SpecInput  # noqa: PLC0415
        from ..models.task_template import TaskTemplate  # noqa: PLC0415

        d = dict(src_dict)

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

        def _parse_spec(data: object) -> None | SpecInput | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                spec_type_1 = SpecInput.from_dict(data)

                return spec_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SpecInput | Unset, data)

        spec = _parse_spec(d.pop("spec", UNSET))

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

        def _parse_task(data: object) -> None | TaskTemplate | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                task_type_1 = TaskTemplate.from_dict(data)

                return task_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskTemplate | Unset, data)

        task = _parse_task(d.pop("task", UNSET))

        def _parse_timezone(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        timezone = _parse_timezone(d.pop("timezone", UNSET))

        patch_schedule = cls(
            catchup_window=catchup_window,
            end_at=end_at,
            jitter=jitter,
            max_runs=max_runs,
            overlap=overlap,
            paused=paused,
            spec=spec,
            start_at=start_at,
            task=task,
            timezone=timezone,
        )

        return patch_schedule
