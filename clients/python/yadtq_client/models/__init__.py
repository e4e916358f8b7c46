"""Contains all the data models used in inputs/outputs"""

from .api_key import ApiKey
from .attempt import Attempt
from .attempt_outcome import AttemptOutcome
from .audit_entry import AuditEntry
from .audit_entry_detail import AuditEntryDetail
from .audit_page import AuditPage
from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .create_key import CreateKey
from .created_key import CreatedKey
from .dead_letter import DeadLetter
from .dead_letters import DeadLetters
from .get_openapi_response_200 import GetOpenapiResponse200
from .health import Health
from .me import Me
from .minute import Minute
from .problem import Problem
from .progress import Progress
from .queue_overview import QueueOverview
from .queue_overview_other import QueueOverviewOther
from .queues import Queues
from .scope import Scope
from .stream_task_events_response_200 import StreamTaskEventsResponse200
from .stream_task_events_response_200_event import StreamTaskEventsResponse200Event
from .submit_request import SubmitRequest
from .submit_request_kwargs_type_0 import SubmitRequestKwargsType0
from .task import Task
from .task_error import TaskError
from .task_kwargs import TaskKwargs
from .task_page import TaskPage
from .task_status import TaskStatus
from .unique_request import UniqueRequest
from .worker import Worker
from .worker_page import WorkerPage
from .worker_partitions import WorkerPartitions
from .worker_state import WorkerState

__all__ = (
    "ApiKey",
    "Attempt",
    "AttemptOutcome",
    "AuditEntry",
    "AuditEntryDetail",
    "AuditPage",
    "BatchRequest",
    "BatchResponse",
    "CreatedKey",
    "CreateKey",
    "DeadLetter",
    "DeadLetters",
    "GetOpenapiResponse200",
    "Health",
    "Me",
    "Minute",
    "Problem",
    "Progress",
    "QueueOverview",
    "QueueOverviewOther",
    "Queues",
    "Scope",
    "StreamTaskEventsResponse200",
    "StreamTaskEventsResponse200Event",
    "SubmitRequest",
    "SubmitRequestKwargsType0",
    "Task",
    "TaskError",
    "TaskKwargs",
    "TaskPage",
    "TaskStatus",
    "UniqueRequest",
    "Worker",
    "WorkerPage",
    "WorkerPartitions",
    "WorkerState",
)
