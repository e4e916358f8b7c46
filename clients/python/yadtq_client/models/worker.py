from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast
from uuid import UUID

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.worker_state import WorkerState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.worker_partitions import WorkerPartitions


T = TypeVar("T", bound="Worker")


@_attrs_define
class Worker:
    """A worker process as `GET /workers` returns it.

    Attributes:
        alive (bool): True when the last heartbeat is within the dead-after threshold of the
            database clock and the worker has not stopped.
        concurrency (int): Tasks it runs at once at most.
        failed (int): Attempts that ended in failure on this worker.
        hostname (str): Host the worker runs on.
        id (UUID): Fresh per process start.
        in_flight (int): Tasks running at the last heartbeat.
        last_heartbeat_at (datetime.datetime): Last heartbeat, database clock.
        partitions (WorkerPartitions): Kafka partitions the worker owns, by topic (`{"yadtq.tasks": [0, 5]}`),
            as of its last heartbeat; a worker also beats right after a rebalance.
            Empty while it has none (e.g. more workers than partitions), once
            stopped, and once it is not `alive`.
        pid (int): Operating-system process id.
        processed (int): Tasks finished with `success` by this worker.
        queues (list[str]): Queues the worker consumes.
        ready (bool): True when the worker is `alive`, a member of its consumer group and
            not fenced (state `ready` or `idle`): what readiness probes use.
        started_at (datetime.datetime): Process start.
        state (WorkerState): A worker's state in GET /workers (design.md, "Worker states").
        task_names (list[str]): Task names the worker has handlers for.
        version (str): yadtq version of the worker.
        stopped_at (datetime.datetime | None | Unset): Set on graceful shutdown.
    """

    alive: bool
    concurrency: int
    failed: int
    hostname: str
    id: UUID
    in_flight: int
    last_heartbeat_at: datetime.datetime
    partitions: WorkerPartitions
    pid: int
    processed: int
    queues: list[str]
    ready: bool
    started_at: datetime.datetime
    state: WorkerState
    task_names: list[str]
    version: str
    stopped_at: datetime.datetime | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        alive = self.alive

        concurrency = self.concurrency

        failed = self.failed

        hostname = self.hostname

        id = str(self.id)

        in_flight = self.in_flight

        last_heartbeat_at = self.last_heartbeat_at.isoformat()

        partitions = self.partitions.to_dict()

        pid = self.pid

        processed = self.processed

        queues = self.queues

        ready = self.ready

        started_at = self.started_at.isoformat()

        state = self.state.value

        task_names = self.task_names

        version = self.version

        stopped_at: None | str | Unset
        if isinstance(self.stopped_at, Unset):
            stopped_at = UNSET
        elif isinstance(self.stopped_at, datetime.datetime):
            stopped_at = self.stopped_at.isoformat()
        else:
            stopped_at = self.stopped_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "alive": alive,
                "concurrency": concurrency,
                "failed": failed,
                "hostname": hostname,
                "id": id,
                "in_flight": in_flight,
                "last_heartbeat_at": last_heartbeat_at,
                "partitions": partitions,
                "pid": pid,
                "processed": processed,
                "queues": queues,
                "ready": ready,
                "started_at": started_at,
                "state": state,
                "task_names": task_names,
                "version": version,
            }
        )
        if stopped_at is not UNSET:
            field_dict["stopped_at"] = stopped_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.worker_partitions import WorkerPartitions  # noqa: PLC0415

        d = dict(src_dict)
        alive = d.pop("alive")

        concurrency = d.pop("concurrency")

        failed = d.pop("failed")

        hostname = d.pop("hostname")

        id = UUID(d.pop("id"))

        in_flight = d.pop("in_flight")

        last_heartbeat_at = datetime.datetime.fromisoformat(d.pop("last_heartbeat_at"))

        partitions = WorkerPartitions.from_dict(d.pop("partitions"))

        pid = d.pop("pid")

        processed = d.pop("processed")

        queues = cast(list[str], d.pop("queues"))

        ready = d.pop("ready")

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        state = WorkerState(d.pop("state"))

        task_names = cast(list[str], d.pop("task_names"))

        version = d.pop("version")

        def _parse_stopped_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                stopped_at_type_0 = datetime.datetime.fromisoformat(data)

                return stopped_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        stopped_at = _parse_stopped_at(d.pop("stopped_at", UNSET))

        worker = cls(
            alive=alive,
            concurrency=concurrency,
            failed=failed,
            hostname=hostname,
            id=id,
            in_flight=in_flight,
            last_heartbeat_at=last_heartbeat_at,
            partitions=partitions,
            pid=pid,
            processed=processed,
            queues=queues,
            ready=ready,
            started_at=started_at,
            state=state,
            task_names=task_names,
            version=version,
            stopped_at=stopped_at,
        )

        worker.additional_properties = d
        return worker

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
