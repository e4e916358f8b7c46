from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.task_status import TaskStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.progress import Progress
    from ..models.task_error import TaskError
    from ..models.task_kwargs import TaskKwargs
    from ..models.task_limit_state import TaskLimitState


T = TypeVar("T", bound="Task")


@_attrs_define
class Task:
    """A task as `GET /tasks/{id}` returns it.

    Attributes:
        args (list[Any]): Positional arguments, exactly as submitted: an array of any JSON values.
        attempts (int): Number of times a worker has claimed the task.
        created_at (datetime.datetime): When the gateway accepted the task.
        id (str): Server-generated UUID or the client-chosen id.
        kwargs (TaskKwargs): Keyword arguments, exactly as submitted: an object of any JSON values.
        max_retries (int): Retries allowed after the first attempt (claims allowed = max_retries + 1).
        queue (str): Queue the task was submitted to.
        status (str | TaskStatus): Lifecycle status: one of `TaskStatus`, or a status this release does not know (a
            newer release's), passed through verbatim and not terminal.
        task (str): Handler name.
        timeout (float): Per-attempt timeout, seconds.
        cancel_requested_at (datetime.datetime | None | Unset): When cancellation of this `processing` task was
            requested.
        error (None | TaskError | Unset):
        finished_at (datetime.datetime | None | Unset): When the task reached a terminal status.
        limits (list[TaskLimitState] | None | Unset): The limits the task takes (docs/limits.md), by name: its bucket of
            each and whether that bucket holds it back now. `GET /tasks/{id}`
            of a task that is not terminal only (a finished task holds and waits
            for no slot); absent for a task without limits, and in listings.
        parents (list[str] | None | Unset): A node's parents' task ids; absent for a task that is not a node, and in
            listings.
        progress (None | Progress | Unset):
        result (Any | Unset): Handler's JSON result once `success` (any JSON value), else null.
        run_at (datetime.datetime | None | Unset): When a `scheduled` task becomes due (countdown, eta or retry
            backoff).
        schedule_id (None | str | Unset): The schedule that fired the task (its id), for tasks fired by a
            schedule (ids `sched:<schedule>:...`); else null.
        scheduled_for (datetime.datetime | None | Unset): The tick the task was fired for (a backfilled or triggered
            run's
            period too); null for tasks no schedule fired.
        started_at (datetime.datetime | None | Unset): When the latest attempt started.
        trace_id (None | str | Unset): W3C trace id (32 hex digits) of the trace the task runs in: the
            submitter's `traceparent`, or a new trace when it sent none or an
            invalid one; null for tasks stored before traces existed.
        worker_id (None | Unset | UUID): Worker holding (or last holding) the task.
        workflow_id (None | str | Unset): The workflow a node belongs to (docs/workflows.md); absent for a task
            that is not a node, and in listings.
    """

    args: list[Any]
    attempts: int
    created_at: datetime.datetime
    id: str
    kwargs: TaskKwargs
    max_retries: int
    queue: str
    status: str | TaskStatus
    task: str
    timeout: float
    cancel_requested_at: datetime.datetime | None | Unset = UNSET
    error: None | TaskError | Unset = UNSET
    finished_at: datetime.datetime | None | Unset = UNSET
    limits: list[TaskLimitState] | None | Unset = UNSET
    parents: list[str] | None | Unset = UNSET
    progress: None | Progress | Unset = UNSET
    result: Any | Unset = UNSET
    run_at: datetime.datetime | None | Unset = UNSET
    schedule_id: None | str | Unset = UNSET
    scheduled_for: datetime.datetime | None | Unset = UNSET
    started_at: datetime.datetime | None | Unset = UNSET
    trace_id: None | str | Unset = UNSET
    worker_id: None | Unset | UUID = UNSET
    workflow_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.progress import Progress  # noqa: PLC0415
        from ..models.task_error import TaskError  # noqa: PLC0415

        args = self.args

        attempts = self.attempts

        created_at = self.created_at.isoformat()

        id = self.id

        kwargs = self.kwargs.to_dict()

        max_retries = self.max_retries

        queue = self.queue

        status: str
        if isinstance(self.status, TaskStatus):
            status = self.status.value
        else:
            status = self.status

        task = self.task

        timeout = self.timeout

        cancel_requested_at: None | str | Unset
        if isinstance(self.cancel_requested_at, Unset):
            cancel_requested_at = UNSET
        elif isinstance(self.cancel_requested_at, datetime.datetime):
            cancel_requested_at = self.cancel_requested_at.isoformat()
        else:
            cancel_requested_at = self.cancel_requested_at

        error: dict[str, Any] | None | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        elif isinstance(self.error, TaskError):
            error = self.error.to_dict()
        else:
            error = self.error

        finished_at: None | str | Unset
        if isinstance(self.finished_at, Unset):
            finished_at = UNSET
        elif isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        limits: list[dict[str, Any]] | None | Unset
        if isinstance(self.limits, Unset):
            limits = UNSET
        elif isinstance(self.limits, list):
            limits = []
            for limits_type_0_item_data in self.limits:
                limits_type_0_item = limits_type_0_item_data.to_dict()
                limits.append(limits_type_0_item)

        else:
            limits = self.limits

        parents: list[str] | None | Unset
        if isinstance(self.parents, Unset):
            parents = UNSET
        elif isinstance(self.parents, list):
            parents = self.parents

        else:
            parents = self.parents

        progress: dict[str, Any] | None | Unset
        if isinstance(self.progress, Unset):
            progress = UNSET
        elif isinstance(self.progress, Progress):
            progress = self.progress.to_dict()
        else:
            progress = self.progress

        result = self.result

        run_at: None | str | Unset
        if isinstance(self.run_at, Unset):
            run_at = UNSET
        elif isinstance(self.run_at, datetime.datetime):
            run_at = self.run_at.isoformat()
        else:
            run_at = self.run_at

        schedule_id: None | str | Unset
        if isinstance(self.schedule_id, Unset):
            schedule_id = UNSET
        else:
            schedule_id = self.schedule_id

        scheduled_for: None | str | Unset
        if isinstance(self.scheduled_for, Unset):
            scheduled_for = UNSET
        elif isinstance(self.scheduled_for, datetime.datetime):
            scheduled_for = self.scheduled_for.isoformat()
        else:
            scheduled_for = self.scheduled_for

        started_at: None | str | Unset
        if isinstance(self.started_at, Unset):
            started_at = UNSET
        elif isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        trace_id: None | str | Unset
        if isinstance(self.trace_id, Unset):
            trace_id = UNSET
        else:
            trace_id = self.trace_id

        worker_id: None | str | Unset
        if isinstance(self.worker_id, Unset):
            worker_id = UNSET
        elif isinstance(self.worker_id, UUID):
            worker_id = str(self.worker_id)
        else:
            worker_id = self.worker_id

        workflow_id: None | str | Unset
        if isinstance(self.workflow_id, Unset):
            workflow_id = UNSET
        else:
            workflow_id = self.workflow_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "args": args,
                "attempts": attempts,
                "created_at": created_at,
                "id": id,
                "kwargs": kwargs,
                "max_retries": max_retries,
                "queue": queue,
                "status": status,
                "task": task,
                "timeout": timeout,
            }
        )
        if cancel_requested_at is not UNSET:
            field_dict["cancel_requested_at"] = cancel_requested_at
        if error is not UNSET:
            field_dict["error"] = error
        if finished_at is not UNSET:
            field_dict["finished_at"] = finished_at
        if limits is not UNSET:
            field_dict["limits"] = limits
        if parents is not UNSET:
            field_dict["parents"] = parents
        if progress is not UNSET:
            field_dict["progress"] = progress
        if result is not UNSET:
            field_dict["result"] = result
        if run_at is not UNSET:
            field_dict["run_at"] = run_at
        if schedule_id is not UNSET:
            field_dict["schedule_id"] = schedule_id
        if scheduled_for is not UNSET:
            field_dict["scheduled_for"] = scheduled_for
        if started_at is not UNSET:
            field_dict["started_at"] = started_at
        if trace_id is not UNSET:
            field_dict["trace_id"] = trace_id
        if worker_id is not UNSET:
            field_dict["worker_id"] = worker_id
        if workflow_id is not UNSET:
            field_dict["workflow_id"] = workflow_id

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.progress import Progress  # noqa: PLC0415
        from ..models.task_error import TaskError  # noqa: PLC0415
        from ..models.task_kwargs import TaskKwargs  # noqa: PLC0415
        from ..models.task_limit_state import TaskLimitState  # noqa: PLC0415

        d = dict(src_dict)
        args = cast(list[Any], d.pop("args"))

        attempts = d.pop("attempts")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        kwargs = TaskKwargs.from_dict(d.pop("kwargs"))

        max_retries = d.pop("max_retries")

        queue = d.pop("queue")

        def _parse_status(data: object) -> str | TaskStatus:
            try:
                if not isinstance(data, str):
                    raise TypeError()
                status_type_0 = TaskStatus(data)

                return status_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(str | TaskStatus, data)

        status = _parse_status(d.pop("status"))

        task = d.pop("task")

        timeout = d.pop("timeout")

        def _parse_cancel_requested_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                cancel_requested_at_type_0 = datetime.datetime.fromisoformat(data)

                return cancel_requested_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        cancel_requested_at = _parse_cancel_requested_at(d.pop("cancel_requested_at", UNSET))

        def _parse_error(data: object) -> None | TaskError | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_1 = TaskError.from_dict(data)

                return error_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskError | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_finished_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        finished_at = _parse_finished_at(d.pop("finished_at", UNSET))

        def _parse_limits(data: object) -> list[TaskLimitState] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                limits_type_0 = []
                _limits_type_0 = data
                for limits_type_0_item_data in _limits_type_0:
                    limits_type_0_item = TaskLimitState.from_dict(limits_type_0_item_data)

                    limits_type_0.append(limits_type_0_item)

                return limits_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[TaskLimitState] | None | Unset, data)

        limits = _parse_limits(d.pop("limits", UNSET))

        def _parse_parents(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                parents_type_0 = cast(list[str], data)

                return parents_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        parents = _parse_parents(d.pop("parents", UNSET))

        def _parse_progress(data: object) -> None | Progress | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                progress_type_1 = Progress.from_dict(data)

                return progress_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Progress | Unset, data)

        progress = _parse_progress(d.pop("progress", UNSET))

        result = d.pop("result", UNSET)

        def _parse_run_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                run_at_type_0 = datetime.datetime.fromisoformat(data)

                return run_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        run_at = _parse_run_at(d.pop("run_at", UNSET))

        def _parse_schedule_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        schedule_id = _parse_schedule_id(d.pop("schedule_id", UNSET))

        def _parse_scheduled_for(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                scheduled_for_type_0 = datetime.datetime.fromisoformat(data)

                return scheduled_for_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        scheduled_for = _parse_scheduled_for(d.pop("scheduled_for", UNSET))

        def _parse_started_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        started_at = _parse_started_at(d.pop("started_at", UNSET))

        def _parse_trace_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        trace_id = _parse_trace_id(d.pop("trace_id", UNSET))

        def _parse_worker_id(data: object) -> None | Unset | UUID:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                worker_id_type_0 = UUID(data)

                return worker_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | UUID, data)

        worker_id = _parse_worker_id(d.pop("worker_id", UNSET))

        def _parse_workflow_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        workflow_id = _parse_workflow_id(d.pop("workflow_id", UNSET))

        task = cls(
            args=args,
            attempts=attempts,
            created_at=created_at,
            id=id,
            kwargs=kwargs,
            max_retries=max_retries,
            queue=queue,
            status=status,
            task=task,
            timeout=timeout,
            cancel_requested_at=cancel_requested_at,
            error=error,
            finished_at=finished_at,
            limits=limits,
            parents=parents,
            progress=progress,
            result=result,
            run_at=run_at,
            schedule_id=schedule_id,
            scheduled_for=scheduled_for,
            started_at=started_at,
            trace_id=trace_id,
            worker_id=worker_id,
            workflow_id=workflow_id,
        )

        task.additional_properties = d
        return task

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
