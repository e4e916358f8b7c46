"""Contains all the data models used in inputs/outputs"""

from .api_key import ApiKey
from .attempt import Attempt
from .attempt_outcome import AttemptOutcome
from .audit_entry import AuditEntry
from .audit_entry_detail import AuditEntryDetail
from .audit_page import AuditPage
from .backfill import Backfill
from .batch_request import BatchRequest
from .batch_response import BatchResponse
from .bucket import Bucket
from .create_key import CreateKey
from .create_schedule import CreateSchedule
from .created_key import CreatedKey
from .dead_letter import DeadLetter
from .dead_letters import DeadLetters
from .fire_result import FireResult
from .fire_view import FireView
from .get_openapi_response_200 import GetOpenapiResponse200
from .health import Health
from .limit import Limit
from .limit_detail import LimitDetail
from .limit_page import LimitPage
from .me import Me
from .minute import Minute
from .node_state import NodeState
from .on_parent_failure import OnParentFailure
from .overlap import Overlap
from .patch_schedule import PatchSchedule
from .problem import Problem
from .progress import Progress
from .put_limit import PutLimit
from .queue_overview import QueueOverview
from .queue_overview_other import QueueOverviewOther
from .queues import Queues
from .rate_body import RateBody
from .schedule import Schedule
from .schedule_page import SchedulePage
from .scope import Scope
from .spec_input import SpecInput
from .stream_task_events_response_200 import StreamTaskEventsResponse200
from .stream_task_events_response_200_event import StreamTaskEventsResponse200Event
from .submit_request import SubmitRequest
from .submit_request_kwargs_type_0 import SubmitRequestKwargsType0
from .task import Task
from .task_error import TaskError
from .task_kwargs import TaskKwargs
from .task_limit_state import TaskLimitState
from .task_page import TaskPage
from .task_status import TaskStatus
from .task_template import TaskTemplate
from .task_template_kwargs_type_0 import TaskTemplateKwargsType0
from .template_view import TemplateView
from .template_view_kwargs import TemplateViewKwargs
from .unique_request import UniqueRequest
from .until import Until
from .wait_request import WaitRequest
from .wait_response import WaitResponse
from .worker import Worker
from .worker_page import WorkerPage
from .worker_partitions import WorkerPartitions
from .worker_state import WorkerState
from .workflow import Workflow
from .workflow_cancelled import WorkflowCancelled
from .workflow_counts import WorkflowCounts
from .workflow_node_request import WorkflowNodeRequest
from .workflow_node_request_kwargs_type_0 import WorkflowNodeRequestKwargsType0
from .workflow_page import WorkflowPage
from .workflow_request import WorkflowRequest
from .workflow_status import WorkflowStatus
from .workflow_summary import WorkflowSummary
from .workflow_summary_counts import WorkflowSummaryCounts

__all__ = (
    "ApiKey",
    "Attempt",
    "AttemptOutcome",
    "AuditEntry",
    "AuditEntryDetail",
    "AuditPage",
    "Backfill",
    "BatchRequest",
    "BatchResponse",
    "Bucket",
    "CreatedKey",
    "CreateKey",
    "CreateSchedule",
    "DeadLetter",
    "DeadLetters",
    "FireResult",
    "FireView",
    "GetOpenapiResponse200",
    "Health",
    "Limit",
    "LimitDetail",
    "LimitPage",
    "Me",
    "Minute",
    "NodeState",
    "OnParentFailure",
    "Overlap",
    "PatchSchedule",
    "Problem",
    "Progress",
    "PutLimit",
    "QueueOverview",
    "QueueOverviewOther",
    "Queues",
    "RateBody",
    "Schedule",
    "SchedulePage",
    "Scope",
    "SpecInput",
    "StreamTaskEventsResponse200",
    "StreamTaskEventsResponse200Event",
    "SubmitRequest",
    "SubmitRequestKwargsType0",
    "Task",
    "TaskError",
    "TaskKwargs",
    "TaskLimitState",
    "TaskPage",
    "TaskStatus",
    "TaskTemplate",
    "TaskTemplateKwargsType0",
    "TemplateView",
    "TemplateViewKwargs",
    "UniqueRequest",
    "Until",
    "WaitRequest",
    "WaitResponse",
    "Worker",
    "WorkerPage",
    "WorkerPartitions",
    "WorkerState",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowCounts",
    "WorkflowNodeRequest",
    "WorkflowNodeRequestKwargsType0",
    "WorkflowPage",
    "WorkflowRequest",
    "WorkflowStatus",
    "WorkflowSummary",
    "WorkflowSummaryCounts",
)
