from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.on_parent_failure import OnParentFailure
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.workflow_node_request_kwargs_type_0 import WorkflowNodeRequestKwargsType0


T = TypeVar("T", bound="WorkflowNodeRequest")


@_attrs_define
class WorkflowNodeRequest:
    """One node of `POST /workflows`: a task (the fields of `POST /tasks`
    but the ids, the schedule and `unique`) with its place in the graph.

        Attributes:
            ref (str): The node's name within the workflow (1-48 of letters, digits, `_-`);
                its task id is `wf:<workflow id>:<ref>`.
            task (str): Handler name: letters, digits and `._:-`, starting with a letter.
            args (list[Any] | None | Unset): Positional arguments.
            depends_on (list[str] | Unset): Refs of the nodes that must finish first (each a `ref` of another
                node, at most once, with no cycle: else a 400 naming
                `tasks[i].depends_on[j]`).
            kwargs (None | Unset | WorkflowNodeRequestKwargsType0): Keyword arguments.
            max_retries (int | None | Unset): Retries after the first attempt (at most `YADTQ_MAX_RETRIES_LIMIT`, default
                100).
            on_parent_failure (None | OnParentFailure | Unset):
            queue (None | str | Unset): Queue (1-64 of letters, digits, `-`, `_`; default `default`).
            retry_backoff_base (float | None | Unset): Retry backoff base, seconds (at most `YADTQ_MAX_TIMEOUT`).
            retry_backoff_cap (float | None | Unset): Retry backoff cap, seconds: at least `retry_backoff_base`, at most
                `YADTQ_MAX_TIMEOUT`.
            timeout (float | None | Unset): Per-attempt timeout in seconds (at most `YADTQ_MAX_TIMEOUT`, default 86400).
    """

    ref: str
    task: str
    args: list[Any] | None | Unset = UNSET
    depends_on: list[str] | Unset = UNSET
    kwargs: None | Unset | WorkflowNodeRequestKwargsType0 = UNSET
    max_retries: int | None | Unset = UNSET
    on_parent_failure: None | OnParentFailure | Unset = UNSET
    queue: None | str | Unset = UNSET
    retry_backoff_base: float | None | Unset = UNSET
    retry_backoff_cap: float | None | Unset = UNSET
    timeout: float | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.workflow_node_request_kwargs_type_0 import WorkflowNodeRequestKwargsType0  # noqa: PLC0415

        ref = self.ref

        task = self.task

        args: list[Any] | None | Unset
        if isinstance(self.args, Unset):
            args = UNSET
        elif isinstance(self.args, list):
            args = self.args

        else:
            args = self.args

        depends_on: list[str] | Unset = UNSET
        if not isinstance(self.depends_on, Unset):
            depends_on = self.depends_on

        kwargs: dict[str, Any] | None | Unset
        if isinstance(self.kwargs, Unset):
            kwargs = UNSET
        elif isinstance(self.kwargs, WorkflowNodeRequestKwargsType0):
            kwargs = self.kwargs.to_dict()
        else:
            kwargs = self.kwargs

        max_retries: int | None | Unset
        if isinstance(self.max_retries, Unset):
            max_retries = UNSET
        else:
            max_retries = self.max_retries

        on_parent_failure: None | str | Unset
        if isinstance(self.on_parent_failure, Unset):
            on_parent_failure = UNSET
        elif isinstance(self.on_parent_failure, OnParentFailure):
            on_parent_failure = self.on_parent_failure.value
        else:
            on_parent_failure = self.on_parent_failure

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

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "ref": ref,
                "task": task,
            }
        )
        if args is not UNSET:
            field_dict["args"] = args
        if depends_on is not UNSET:
            field_dict["depends_on"] = depends_on
        if kwargs is not UNSET:
            field_dict["kwargs"] = kwargs
        if max_retries is not UNSET:
            field_dict["max_retries"] = max_retries
        if on_parent_failure is not UNSET:
            field_dict["on_parent_failure"] = on_parent_failure
        if queue is not UNSET:
            field_dict["queue"] = queue
        if retry_backoff_base is not UNSET:
            field_dict["retry_backoff_base"] = retry_backoff_base
        if retry_backoff_cap is not UNSET:
            field_dict["retry_backoff_cap"] = retry_backoff_cap
        if timeout is not UNSET:
            field_dict["timeout"] = timeout

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.workflow_node_request_kwargs_type_0 import WorkflowNodeRequestKwargsType0  # noqa: PLC0415

        d = dict(src_dict)
        ref = d.pop("ref")

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

        depends_on = cast(list[str], d.pop("depends_on", UNSET))

        def _parse_kwargs(data: object) -> None | Unset | WorkflowNodeRequestKwargsType0:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                kwargs_type_0 = WorkflowNodeRequestKwargsType0.from_dict(data)

                return kwargs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | WorkflowNodeRequestKwargsType0, data)

        kwargs = _parse_kwargs(d.pop("kwargs", UNSET))

        def _parse_max_retries(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        max_retries = _parse_max_retries(d.pop("max_retries", UNSET))

        def _parse_on_parent_failure(data: object) -> None | OnParentFailure | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                on_parent_failure_type_1 = OnParentFailure(data)

                return on_parent_failure_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | OnParentFailure | Unset, data)

        on_parent_failure = _parse_on_parent_failure(d.pop("on_parent_failure", UNSET))

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

        workflow_node_request = cls(
            ref=ref,
            task=task,
            args=args,
            depends_on=depends_on,
            kwargs=kwargs,
            max_retries=max_retries,
            on_parent_failure=on_parent_failure,
            queue=queue,
            retry_backoff_base=retry_backoff_base,
            retry_backoff_cap=retry_backoff_cap,
            timeout=timeout,
        )

        return workflow_node_request
