from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.submit_request_kwargs_type_0 import SubmitRequestKwargsType0
    from ..models.unique_request import UniqueRequest


T = TypeVar("T", bound="SubmitRequest")


@_attrs_define
class SubmitRequest:
    """Body of `POST /tasks` (and each element of `POST /tasks/batch`).

    Example:
        {'task': 'multiply', 'args': [4, 5], 'kwargs': {}}

    Attributes:
        task (str): Handler name (required): letters, digits and `._:-`, starting with a letter.
        args (list[Any] | None | Unset): Positional arguments, a JSON array of any values (default `[]`).
        countdown (float | None | Unset): Run no sooner than this many seconds from now (the task waits `scheduled`); at
            most
            `YADTQ_MAX_SCHEDULE_AHEAD` (default 2592000, 30 days).
        eta (datetime.datetime | None | Unset): Run no sooner than this time (RFC 3339), at most
            `YADTQ_MAX_SCHEDULE_AHEAD` (default 30 days)
            ahead; exclusive with `countdown`.
        id (None | str | Unset): Client-chosen task id (1-128 of letters, digits, `._:-`, other than `.`
            and `..`); submitting the
            same id again returns the original task. Default: a server UUID.
            `task-id` and the `Idempotency-Key` header, when given too, must be the same id.
        kwargs (None | SubmitRequestKwargsType0 | Unset): Keyword arguments, a JSON object of any values (default `{}`).
        limits (list[str] | None | Unset): Limits the task takes by name (docs/limits.md), besides every limit
            whose `tasks` list names its task; at most `YADTQ_MAX_LIMITS_PER_TASK`
            (default 8), no name twice. A task whose limits have no room is
            accepted `held` (202) and runs once they have. An unknown name answers
            422 naming it. Not part of the idempotency comparison. Taken by
            `POST /tasks` and `POST /tasks/batch` only.
        max_retries (int | None | Unset): Retries after the first attempt (claims allowed = max_retries + 1). Retried on
            retryable errors only (panics, timeouts, HTTP 5xx/429, a handler's retryable error).
            At most `YADTQ_MAX_RETRIES_LIMIT` (default 100).
        queue (None | str | Unset): Queue (1-64 of letters, digits, `-`, `_`); maps to topic `yadtq.tasks.<queue>`.
            Default `default`.
        retry_backoff_base (float | None | Unset): Seconds: upper bound of the first retry delay (doubling per attempt,
            full jitter);
            at most `YADTQ_MAX_TIMEOUT` (default 86400).
        retry_backoff_cap (float | None | Unset): Seconds: longest retry delay; at least `retry_backoff_base`, at most
            `YADTQ_MAX_TIMEOUT` (default 86400).
        task_id (None | str | Unset): Same as `id` (the seed's spelling).
        timeout (float | None | Unset): Per-attempt timeout in seconds; the handler is aborted and the attempt fails
            with kind `timeout`.
            At most `YADTQ_MAX_TIMEOUT` (default 86400).
        unique (None | UniqueRequest | Unset):
    """

    task: str
    args: list[Any] | None | Unset = UNSET
    countdown: float | None | Unset = UNSET
    eta: datetime.datetime | None | Unset = UNSET
    id: None | str | Unset = UNSET
    kwargs: None | SubmitRequestKwargsType0 | Unset = UNSET
    limits: list[str] | None | Unset = UNSET
    max_retries: int | None | Unset = UNSET
    queue: None | str | Unset = UNSET
    retry_backoff_base: float | None | Unset = UNSET
    retry_backoff_cap: float | None | Unset = UNSET
    task_id: None | str | Unset = UNSET
    timeout: float | None | Unset = UNSET
    unique: None | UniqueRequest | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.submit_request_kwargs_type_0 import SubmitRequestKwargsType0  # noqa: PLC0415
        from ..models.unique_request import UniqueRequest  # noqa: PLC0415

        task = self.task

        args: list[Any] | None | Unset
        if isinstance(self.args, Unset):
            args = UNSET
        elif isinstance(self.args, list):
            args = self.args

        else:
            args = self.args

        countdown: float | None | Unset
        if isinstance(self.countdown, Unset):
            countdown = UNSET
        else:
            countdown = self.countdown

        eta: None | str | Unset
        if isinstance(self.eta, Unset):
            eta = UNSET
        elif isinstance(self.eta, datetime.datetime):
            eta = self.eta.isoformat()
        else:
            eta = self.eta

        id: None | str | Unset
        if isinstance(self.id, Unset):
            id = UNSET
        else:
            id = self.id

        kwargs: dict[str, Any] | None | Unset
        if isinstance(self.kwargs, Unset):
            kwargs = UNSET
        elif isinstance(self.kwargs, SubmitRequestKwargsType0):
            kwargs = self.kwargs.to_dict()
        else:
            kwargs = self.kwargs

        limits: list[str] | None | Unset
        if isinstance(self.limits, Unset):
            limits = UNSET
        elif isinstance(self.limits, list):
            limits = self.limits

        else:
            limits = self.limits

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

        task_id: None | str | Unset
        if isinstance(self.task_id, Unset):
            task_id = UNSET
        else:
            task_id = self.task_id

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
        if countdown is not UNSET:
            field_dict["countdown"] = countdown
        if eta is not UNSET:
            field_dict["eta"] = eta
        if id is not UNSET:
            field_dict["id"] = id
        if kwargs is not UNSET:
            field_dict["kwargs"] = kwargs
        if limits is not UNSET:
            field_dict["limits"] = limits
        if max_retries is not UNSET:
            field_dict["max_retries"] = max_retries
        if queue is not UNSET:
            field_dict["queue"] = queue
        if retry_backoff_base is not UNSET:
            field_dict["retry_backoff_base"] = retry_backoff_base
        if retry_backoff_cap is not UNSET:
            field_dict["retry_backoff_cap"] = retry_backoff_cap
        if task_id is not UNSET:
            field_dict["task-id"] = task_id
        if timeout is not UNSET:
            field_dict["timeout"] = timeout
        if unique is not UNSET:
            field_dict["unique"] = unique

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.submit_request_kwargs_type_0 import SubmitRequestKwargsType0  # noqa: PLC0415
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

        def _parse_countdown(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        countdown = _parse_countdown(d.pop("countdown", UNSET))

        def _parse_eta(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                eta_type_0 = datetime.datetime.fromisoformat(data)

                return eta_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        eta = _parse_eta(d.pop("eta", UNSET))

        def _parse_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        id = _parse_id(d.pop("id", UNSET))

        def _parse_kwargs(data: object) -> None | SubmitRequestKwargsType0 | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                kwargs_type_0 = SubmitRequestKwargsType0.from_dict(data)

                return kwargs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | SubmitRequestKwargsType0 | Unset, data)

        kwargs = _parse_kwargs(d.pop("kwargs", UNSET))

        def _parse_limits(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                limits_type_0 = cast(list[str], data)

                return limits_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        limits = _parse_limits(d.pop("limits", UNSET))

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

        def _parse_task_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        task_id = _parse_task_id(d.pop("task-id", UNSET))

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

        submit_request = cls(
            task=task,
            args=args,
            countdown=countdown,
            eta=eta,
            id=id,
            kwargs=kwargs,
            limits=limits,
            max_retries=max_retries,
            queue=queue,
            retry_backoff_base=retry_backoff_base,
            retry_backoff_cap=retry_backoff_cap,
            task_id=task_id,
            timeout=timeout,
            unique=unique,
        )

        return submit_request
