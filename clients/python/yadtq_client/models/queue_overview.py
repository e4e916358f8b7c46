from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.minute import Minute
    from ..models.queue_overview_other import QueueOverviewOther


T = TypeVar("T", bound="QueueOverview")


@_attrs_define
class QueueOverview:
    """One queue's state.

    Attributes:
        finished (Minute): Tasks finished in one minute, by outcome.
        held (int): Tasks a limit holds back until it has room (docs/limits.md); not
            counted in `queued` nor in `oldest_queued_age_s`.
        other (QueueOverviewOther): Tasks now in a status this release does not know (a newer release's,
            during a rolling upgrade), by that status
            verbatim; such tasks are not finished. Empty when there are none.
        processing (int): Tasks running now.
        queue (str): Queue name.
        queued (int): Tasks waiting for a worker now.
        scheduled (int): Tasks waiting for their `run_at` (countdown, eta, retry backoff).
        throughput (list[Minute]): Tasks finished per minute over the window, oldest first, one entry per
            minute (zeros included); the last one is the current, partial minute.
        waiting (int): Workflow nodes waiting for their parents (docs/workflows.md).
        consumer_lag (int | None | Unset): Records on the queue's topics (its shared topic and its dedicated
            tenants' own) the workers' consumer group has not committed yet; null
            when Kafka did not answer (see `kafka_error`).
        failure_rate (float | None | Unset): `failed / (success + failed)` over the window; null when none finished.
        oldest_queued_age_s (float | None | Unset): Seconds since the oldest `queued` task became due (database clock);
            null when none is queued.
    """

    finished: Minute
    held: int
    other: QueueOverviewOther
    processing: int
    queue: str
    queued: int
    scheduled: int
    throughput: list[Minute]
    waiting: int
    consumer_lag: int | None | Unset = UNSET
    failure_rate: float | None | Unset = UNSET
    oldest_queued_age_s: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        finished = self.finished.to_dict()

        held = self.held

        other = self.other.to_dict()

        processing = self.processing

        queue = self.queue

        queued = self.queued

        scheduled = self.scheduled

        throughput = []
        for throughput_item_data in self.throughput:
            throughput_item = throughput_item_data.to_dict()
            throughput.append(throughput_item)

        waiting = self.waiting

        consumer_lag: int | None | Unset
        if isinstance(self.consumer_lag, Unset):
            consumer_lag = UNSET
        else:
            consumer_lag = self.consumer_lag

        failure_rate: float | None | Unset
        if isinstance(self.failure_rate, Unset):
            failure_rate = UNSET
        else:
            failure_rate = self.failure_rate

        oldest_queued_age_s: float | None | Unset
        if isinstance(self.oldest_queued_age_s, Unset):
            oldest_queued_age_s = UNSET
        else:
            oldest_queued_age_s = self.oldest_queued_age_s

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "finished": finished,
                "held": held,
                "other": other,
                "processing": processing,
                "queue": queue,
                "queued": queued,
                "scheduled": scheduled,
                "throughput": throughput,
                "waiting": waiting,
            }
        )
        if consumer_lag is not UNSET:
            field_dict["consumer_lag"] = consumer_lag
        if failure_rate is not UNSET:
            field_dict["failure_rate"] = failure_rate
        if oldest_queued_age_s is not UNSET:
            field_dict["oldest_queued_age_s"] = oldest_queued_age_s

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.minute import Minute  # noqa: PLC0415
        from ..models.queue_overview_other import QueueOverviewOther  # noqa: PLC0415

        d = dict(src_dict)
        finished = Minute.from_dict(d.pop("finished"))

        held = d.pop("held")

        other = QueueOverviewOther.from_dict(d.pop("other"))

        processing = d.pop("processing")

        queue = d.pop("queue")

        queued = d.pop("queued")

        scheduled = d.pop("scheduled")

        throughput = []
        _throughput = d.pop("throughput")
        for throughput_item_data in _throughput:
            throughput_item = Minute.from_dict(throughput_item_data)

            throughput.append(throughput_item)

        waiting = d.pop("waiting")

        def _parse_consumer_lag(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        consumer_lag = _parse_consumer_lag(d.pop("consumer_lag", UNSET))

        def _parse_failure_rate(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        failure_rate = _parse_failure_rate(d.pop("failure_rate", UNSET))

        def _parse_oldest_queued_age_s(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        oldest_queued_age_s = _parse_oldest_queued_age_s(d.pop("oldest_queued_age_s", UNSET))

        queue_overview = cls(
            finished=finished,
            held=held,
            other=other,
            processing=processing,
            queue=queue,
            queued=queued,
            scheduled=scheduled,
            throughput=throughput,
            waiting=waiting,
            consumer_lag=consumer_lag,
            failure_rate=failure_rate,
            oldest_queued_age_s=oldest_queued_age_s,
        )

        queue_overview.additional_properties = d
        return queue_overview

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
