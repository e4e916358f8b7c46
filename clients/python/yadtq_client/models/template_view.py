from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.template_view_kwargs import TemplateViewKwargs
    from ..models.unique_request import UniqueRequest


T = TypeVar("T", bound="TemplateView")


@_attrs_define
class TemplateView:
    """The task a schedule fires.

    Attributes:
        args (list[Any]): Positional arguments, as sent.
        kwargs (TemplateViewKwargs): Keyword arguments, as sent.
        max_retries (int): Retries after the first attempt.
        queue (str): Queue.
        task (str): Handler name.
        timeout (float): Per-attempt timeout, seconds.
        retry_backoff_base (float | None | Unset): Retry backoff base, seconds.
        retry_backoff_cap (float | None | Unset): Retry backoff cap, seconds.
        unique (None | UniqueRequest | Unset):
    """

    args: list[Any]
    kwargs: TemplateViewKwargs
    max_retries: int
    queue: str
    task: str
    timeout: float
    retry_backoff_base: float | None | Unset = UNSET
    retry_backoff_cap: float | None | Unset = UNSET
    unique: None | UniqueRequest | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.unique_request import UniqueRequest  # noqa: PLC0415

        args = self.args

        kwargs = self.kwargs.to_dict()

        max_retries = self.max_retries

        queue = self.queue

        task = self.task

        timeout = self.timeout

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

        unique: dict[str, Any] | None | Unset
        if isinstance(self.unique, Unset):
            unique = UNSET
        elif isinstance(self.unique, UniqueRequest):
            unique = self.unique.to_dict()
        else:
            unique = self.unique

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "args": args,
                "kwargs": kwargs,
                "max_retries": max_retries,
                "queue": queue,
                "task": task,
                "timeout": timeout,
            }
        )
        if retry_backoff_base is not UNSET:
            field_dict["retry_backoff_base"] = retry_backoff_base
        if retry_backoff_cap is not UNSET:
            field_dict["retry_backoff_cap"] = retry_backoff_cap
        if unique is not UNSET:
            field_dict["unique"] = unique

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.template_view_kwargs import TemplateViewKwargs  # noqa: PLC0415
        from ..models.unique_request import UniqueRequest  # noqa: PLC0415

        d = dict(src_dict)
        args = cast(list[Any], d.pop("args"))

        kwargs = TemplateViewKwargs.from_dict(d.pop("kwargs"))

        max_retries = d.pop("max_retries")

        queue = d.pop("queue")

        task = d.pop("task")

        timeout = d.pop("timeout")

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

        template_view = cls(
            args=args,
            kwargs=kwargs,
            max_retries=max_retries,
            queue=queue,
            task=task,
            timeout=timeout,
            retry_backoff_base=retry_backoff_base,
            retry_backoff_cap=retry_backoff_cap,
            unique=unique,
        )

        template_view.additional_properties = d
        return template_view

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
