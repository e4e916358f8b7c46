from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.task_template_kwargs_type_0 import TaskTemplateKwargsType0
    from ..models.unique_request import UniqueRequest


T = TypeVar("T", bound="TaskTemplate")


@_attrs_define
class TaskTemplate:
    """The task a schedule fires, as `POST /schedules` and `PATCH` take it: a
    `POST /tasks` body without `id`, `task-id`, `countdown` or `eta` (the
    id is derived from the schedule and the tick; the tick is the start).
    For the OpenAPI document only: the gateway validates it as `POST /tasks`
    validates a body.

        Attributes:
            task (str): Handler name (required): letters, digits and `._:-`, starting with a letter.
            args (list[Any] | None | Unset): Positional arguments, a JSON array of any values (default `[]`).
            kwargs (None | TaskTemplateKwargsType0 | Unset): Keyword arguments, a JSON object of any values (default `{}`).
            max_retries (int | None | Unset): Retries after the first attempt (at most `YADTQ_MAX_RETRIES_LIMIT`, default
                100).
            queue (None | str | Unset): Queue (1-64 of letters, digits, `-`, `_`). Default `default`.
            retry_backoff_base (float | None | Unset): Seconds: upper bound of the first retry delay; at most
                `YADTQ_MAX_TIMEOUT` (default 86400).
            retry_backoff_cap (float | None | Unset): Seconds: longest retry delay; at least `retry_backoff_base`, at most
                `YADTQ_MAX_TIMEOUT`.
            timeout (float | None | Unset): Per-attempt timeout in seconds (at most `YADTQ_MAX_TIMEOUT`, default 86400).
            unique (None | UniqueRequest | Unset):
    """

    task: str
    args: list[Any] | None | Unset = UNSET
    kwargs: None | TaskTemplateKwargsType0 | Unset = UNSET
    max_retries: int | None | Unset = UNSET
    queue: None | str | Unset = UNSET
    retry_backoff_base: float | None | Unset = UNSET
    retry_backoff_cap: float | None | Unset = UNSET
    timeout: float | None | Unset = UNSET
    unique: None | UniqueRequest | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.task_template_kwargs_type_0 import TaskTemplateKwargsType0  # noqa: PLC0415
        from ..models.unique_request import UniqueRequest  # noqa: PLC0415

        task = self.task

        args: list[Any] | None | Unset
        if isinstance(self.args, Unset):
            args = UNSET
        elif isinstance(self.args, list):
            args = self.args

        else:
            args = self.args

        kwargs: dict[str, Any] | None | Unset
        if isinstance(self.kwargs, Unset):
            kwargs = UNSET
        elif isinstance(self.kwargs, TaskTemplateKwargsType0):
            kwargs = self.kwargs.to_dict()
        else:
            kwargs = self.kwargs

        max_retries: int | None | Unset
        if isinstance(self.max_retries, Unset):
            max_retries = UNSET
        else:
            max_retries = self.max_retries

        queue: None | str | Unset
        if isinstance(self.queue, Unset):
            queue = UNSET
        else:
            queue = self.queue

        retry_backoff_base: float | None | Unset
        if isinstance(self.retry_backoff_base, Unset):
            retry_backoff_base = UNSET
        else:
            retry_backoff_base = self.retry_backoff_base

        retry_backoff_cap: float | None | Unset
        if isinstance(self.retry_backoff_cap, Unset):
            retry_backoff_cap = UNSET
        else:
            retry_backoff_cap = self.retry_backoff_cap

        timeout: float | None | Unset
        if isinstance(self.timeout, Unset):
            timeout = UNSET
        else:
            timeout = self.timeout

        unique: dict[str, Any] | None | Unset
        if isinstance(self.unique, Unset):
            unique = UNSET
        elif isinstance(self.unique, UniqueRequest):
            unique = self.unique.to_dict()
        else:
            unique = self.unique

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "task": task,
            }
        )
        if args is not UNSET:
            field_dict["args"] = args
        if kwargs is not UNSET:
            field_dict["kwargs"] = kwargs
        if max_retries is not UNSET:
            field_dict["max_retries"] = max_retries
        if queue is not UNSET:
            field_dict["queue"] = queue
        if retry_backoff_base is not UNSET:
            field_dict["retry_backoff_base"] = retry_backoff_base
        if retry_backoff_cap is not UNSET:
            field_dict["retry_backoff_cap"] = retry_backoff_cap
        if timeout is not UNSET:
            field_dict["timeout"] = timeout
        if unique is not UNSET:
            field_dict["unique"] = unique

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_template_kwargs_type_0 import TaskTemplateKwargsType0  # noqa: PLC0415
        from ..models.unique_request import UniqueRequest  # noqa: PLC0415

        d = dict(src_dict)
        task = d.pop("task")

        def _parse_args(data: object) -> list[Any] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                args_type_0 = cast(list[Any], data)

                return args_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[Any] | None | Unset, data)

        args = _parse_args(d.pop("args", UNSET))

        def _parse_kwargs(data: object) -> None | TaskTemplateKwargsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                kwargs_type_0 = TaskTemplateKwargsType0.from_dict(data)

                return kwargs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskTemplateKwargsType0 | Unset, data)

        kwargs = _parse_kwargs(d.pop("kwargs", UNSET))

        def _parse_max_retries(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_retries = _parse_max_retries(d.pop("max_retries", UNSET))

        def _parse_queue(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        queue = _parse_queue(d.pop("queue", UNSET))

        def _parse_retry_backoff_base(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        retry_backoff_base = _parse_retry_backoff_base(d.pop("retry_backoff_base", UNSET))

        def _parse_retry_backoff_cap(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        retry_backoff_cap = _parse_retry_backoff_cap(d.pop("retry_backoff_cap", UNSET))

        def _parse_timeout(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        timeout = _parse_timeout(d.pop("timeout", UNSET))

        def _parse_unique(data: object) -> None | UniqueRequest | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                unique_type_1 = UniqueRequest.from_dict(data)

                return unique_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | UniqueRequest | Unset, data)

        unique = _parse_unique(d.pop("unique", UNSET))

        task_template = cls(
            task=task,
            args=args,
            kwargs=kwargs,
            max_retries=max_retries,
            queue=queue,
            retry_backoff_base=retry_backoff_base,
            retry_backoff_cap=retry_backoff_cap,
            timeout=timeout,
            unique=unique,
        )

        return task_template
