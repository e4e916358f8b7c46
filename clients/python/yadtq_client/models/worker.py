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
        id (UUID): Fresh per process start.
        in_flight (int): Tasks running at the last heartbeat.
        last_heartbeat_at (datetime.datetime): Last heartbeat, database clock.
        partitions (WorkerPartitions): Kafka partitions the worker owns, by topic (`{"yadtq.tasks": [0, 5]}`),
            as of its last heartbeat; a worker also beats right after a rebalance.
            Empty while it has none (e.g. more workers than partitions), once
            stopped, and once it is not `alive`.
        processed (int): Tasks finished with `success` by this worker.
        queues (list[str]): Queues the worker consumes.
        ready (bool): True when the worker is `alive`, a member of its consumer group and
            not fenced (state `ready` or `idle`): what readiness probes use.
        started_at (datetime.datetime): Process start.
        state (WorkerState): A worker's state in GET /workers (docs/architecture.md, "Worker states").
        task_names (list[str]): Task names the worker has handlers for.
        hostname (None | str | Unset): Host the worker runs on; null for keys without the `operate` scope.
        pid (int | None | Unset): Operating-system process id; null for keys without the `operate` scope.
        stopped_at (datetime.datetime | None | Unset): Set on graceful shutdown.
        tenants (list[str] | None | Unset): The tenants the worker was started for (`--tenants`), whose tasks it
            runs while they are dedicated; null for a worker of the shared topics
            (every tenant that is not dedicated). Keys without the `cluster` scope
            see at most their own tenant in it (`[]`: dedicated to others).
        version (None | str | Unset): yadtq version of the worker; null for keys without the `operate` scope.
    """

    alive: bool
    concurrency: int
    failed: int
    id: UUID
    in_flight: int
    last_heartbeat_at: datetime.datetime
    partitions: WorkerPartitions
    processed: int
    queues: list[str]
    ready: bool
    started_at: datetime.datetime
    state: WorkerState
    task_names: list[str]
    hostname: None | str | Unset = UNSET
    pid: int | None | Unset = UNSET
    stopped_at: datetime.datetime | None | Unset = UNSET
    tenants: list[str] | None | Unset = UNSET
    version: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        alive = self.alive

        concurrency = self.concurrency

        failed = self.failed

        id = str(self.id)

        in_flight = self.in_flight

        last_heartbeat_at = self.last_heartbeat_at.isoformat()

        partitions = self.partitions.to_dict()

        processed = self.processed

        queues = self.queues

        ready = self.ready

        started_at = self.started_at.isoformat()

        state = self.state.value

        task_names = self.task_names

        hostname: None | str | Unset
        if isinstance(self.hostname, Unset):
            hostname = UNSET
        else:
            hostname = self.hostname

        pid: int | None | Unset
        if isinstance(self.pid, Unset):
            pid = UNSET
        else:
            pid = self.pid

        stopped_at: None | str | Unset
        if isinstance(self.stopped_at, Unset):
            stopped_at = UNSET
        elif isinstance(self.stopped_at, datetime.datetime):
            stopped_at = self.stopped_at.isoformat()
        else:
            stopped_at = self.stopped_at

        tenants: list[str] | None | Unset
        if isinstance(self.tenants, Unset):
            tenants = UNSET
        elif isinstance(self.tenants, list):
            tenants = self.tenants

        else:
            tenants = self.tenants

        version: None | str | Unset
        if isinstance(self.version, Unset):
            version = UNSET
        else:
            version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "alive": alive,
                "concurrency": concurrency,
                "failed": failed,
                "id": id,
                "in_flight": in_flight,
                "last_heartbeat_at": last_heartbeat_at,
                "partitions": partitions,
                "processed": processed,
                "queues": queues,
                "ready": ready,
                "started_at": started_at,
                "state": state,
                "task_names": task_names,
            }
        )
        if hostname is not UNSET:
            field_dict["hostname"] = hostname
        if pid is not UNSET:
            field_dict["pid"] = pid
        if stopped_at is not UNSET:
            field_dict["stopped_at"] = stopped_at
        if tenants is not UNSET:
            field_dict["tenants"] = tenants
        if version is not UNSET:
            field_dict["version"] = version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.worker_partitions import WorkerPartitions  # noqa: PLC0415

        d = dict(src_dict)
        alive = d.pop("alive")

        concurrency = d.pop("concurrency")

        failed = d.pop("failed")

        id = UUID(d.pop("id"))

        in_flight = d.pop("in_flight")

        last_heartbeat_at = datetime.datetime.fromisoformat(d.pop("last_heartbeat_at"))

        partitions = WorkerPartitions.from_dict(d.pop("partitions"))

        processed = d.pop("processed")

        queues = cast(list[str], d.pop("queues"))

        ready = d.pop("ready")

        started_at = datetime.datetime.fromisoformat(d.pop("started_at"))

        state = WorkerState(d.pop("state"))

        task_names = cast(list[str], d.pop("task_names"))

        def _parse_hostname(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        hostname = _parse_hostname(d.pop("hostname", UNSET))

        def _parse_pid(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        pid = _parse_pid(d.pop("pid", UNSET))

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

        def _parse_tenants(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                tenants_type_0 = cast(list[str], data)

                return tenants_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        tenants = _parse_tenants(d.pop("tenants", UNSET))

        def _parse_version(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        version = _parse_version(d.pop("version", UNSET))

        worker = cls(
            alive=alive,
            concurrency=concurrency,
            failed=failed,
            id=id,
            in_flight=in_flight,
            last_heartbeat_at=last_heartbeat_at,
            partitions=partitions,
            processed=processed,
            queues=queues,
            ready=ready,
            started_at=started_at,
            state=state,
            task_names=task_names,
            hostname=hostname,
            pid=pid,
            stopped_at=stopped_at,
            tenants=tenants,
            version=version,
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
