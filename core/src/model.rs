//! The task model as clients and workers see it: statuses, task and worker
//! views, and the error document recorded for a failed attempt.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::names::{TaskId, TaskKey};

/// Where a task is in its lifecycle. Terminal: `success`, `failed`, `cancelled`.
///
/// A status this release does not know (one a newer release writes, read
/// during a rolling upgrade) is kept verbatim in
/// [`TaskStatus::Other`] and is never terminal, so every reader passes it
/// through instead of failing. Serialized and stored as its name (text), an
/// `Other` as its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// A workflow node whose parents have not all finished (docs/workflows.md).
    Waiting,
    /// Held back by a limit with no room (docs/limits.md): it becomes
    /// `queued` as soon as every one of its limits has room. Not terminal.
    Held,
    /// Accepted and waiting for a worker.
    Queued,
    /// Waiting for its `run_at` time (countdown, eta or retry backoff).
    Scheduled,
    /// Claimed by a worker, which is running it.
    Processing,
    /// Finished; `result` holds the handler's JSON value.
    Success,
    /// Finished without a result; `error` says why.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
    /// A status this release does not know, as stored. Never one of the
    /// names above ([`TaskStatus::from_stored`] maps those to their variants).
    Other(String),
}

impl TaskStatus {
    /// The statuses this release knows, in lifecycle order.
    pub const KNOWN: [TaskStatus; 8] = [
        Self::Waiting,
        Self::Held,
        Self::Queued,
        Self::Scheduled,
        Self::Processing,
        Self::Success,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The name stored in the `status` column (an `Other`'s text as is).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Waiting => "waiting",
            Self::Held => "held",
            Self::Queued => "queued",
            Self::Scheduled => "scheduled",
            Self::Processing => "processing",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Other(s) => s,
        }
    }

    /// Parses one of the known names; `None` for any other text. What a
    /// filter accepts (`GET /tasks?status=`): it names only known statuses.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "waiting" => Self::Waiting,
            "held" => Self::Held,
            "queued" => Self::Queued,
            "scheduled" => Self::Scheduled,
            "processing" => Self::Processing,
            "success" => Self::Success,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Reads a stored (or received) status: a known name as its variant,
    /// any other text as [`TaskStatus::Other`]. Never fails; allocates only
    /// for an unknown name.
    pub(crate) fn from_stored(s: &str) -> Self {
        Self::parse(s).unwrap_or_else(|| Self::Other(s.to_owned()))
    }

    /// True for `success`, `failed` and `cancelled`; false for an unknown
    /// status (a newer release's statuses are waiting ones, never final).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Cancelled)
    }

    /// False for [`TaskStatus::Other`].
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Other(_))
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Accepts any string ([`TaskStatus::from_stored`]): a status passes through
/// verbatim. A filter that must refuse unknown names uses [`known_status`].
impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::from_stored(&s))
    }
}

/// `deserialize_with` for an optional status filter: only the known names,
/// an error listing them otherwise (a 400 in `GET /tasks?status=`).
pub fn known_status<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<TaskStatus>, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    TaskStatus::parse(&s).map(Some).ok_or_else(|| {
        let known: Vec<&str> = TaskStatus::KNOWN.iter().map(TaskStatus::as_str).collect();
        serde::de::Error::custom(format_args!("unknown status {s:?}: expected one of {}", known.join(", ")))
    })
}

/// The `TaskStatus` component: the known names only (an enum, which the
/// generated SDKs turn into theirs). A task's `status` is this or any other
/// string ([`task_status_or_other`]); a filter takes this one alone.
impl utoipa::PartialSchema for TaskStatus {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(
                "Where a task is in its lifecycle. Terminal: `success`, `failed`, `cancelled`. \
                 A task may also carry a status not listed here (a newer release's, during a rolling \
                 upgrade): treat it as not terminal.",
            ))
            .enum_values(Some(Self::KNOWN.iter().map(TaskStatus::as_str)))
            .into()
    }
}

impl ToSchema for TaskStatus {
    fn name() -> std::borrow::Cow<'static, str> {
        "TaskStatus".into()
    }
}

/// Schema of a task's `status`: `anyOf` the [`TaskStatus`] enum or any
/// string, so generated clients keep their enum for the known names and
/// accept the others (`TaskStatus | str` in Python, `TaskStatus | string`
/// in TypeScript).
pub fn task_status_or_other() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Ref, SchemaType, Type};
    AnyOfBuilder::new()
        .item(Ref::from_schema_name("TaskStatus"))
        .item(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)))
        .description(Some(
            "Lifecycle status: one of `TaskStatus`, or a status this release does not know \
             (a newer release's), passed through verbatim and not terminal.",
        ))
        .into()
}

/// Why an attempt failed: `{kind, message}`. Kinds used by yadtq itself:
/// `unknown_task`, `invalid_arguments`, `handler_error`, `panic`, `timeout`, `worker_lost`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskError {
    /// Machine-readable class of the failure.
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
}

impl TaskError {
    /// Builds an error of `kind` with `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: kind.into(), message: message.into() }
    }
}

/// Progress a handler reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// 0 to 100.
    pub percent: f64,
    /// Free text, e.g. "resized 3 of 10 images".
    #[serde(default)]
    pub message: String,
}

/// How an attempt ended (`task_attempts.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The handler returned a result.
    Success,
    /// The handler failed (the task may be retried).
    Failed,
    /// Reserved by the schema for a retried attempt; not written by this release.
    Retry,
    /// Reserved by the schema for a timed-out attempt; this release records a
    /// timeout as `failed` with error kind `timeout`.
    Timeout,
    /// Its worker died or stopped before recording an outcome.
    WorkerLost,
    /// Aborted on a cancel request.
    Cancelled,
}

impl AttemptOutcome {
    /// The name stored in `task_attempts.outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Retry => "retry",
            Self::Timeout => "timeout",
            Self::WorkerLost => "worker_lost",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "success" => Self::Success,
            "failed" => Self::Failed,
            "retry" => Self::Retry,
            "timeout" => Self::Timeout,
            "worker_lost" => Self::WorkerLost,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// One claim of a task, as `GET /tasks/{id}/attempts` returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Attempt {
    /// 1 for the first claim.
    pub attempt: i32,
    /// Worker that claimed it.
    pub worker_id: Uuid,
    /// Claim time.
    pub started_at: DateTime<Utc>,
    /// When the attempt ended (null while it runs).
    pub finished_at: Option<DateTime<Utc>>,
    /// How the attempt ended; null while it runs.
    pub outcome: Option<AttemptOutcome>,
    /// Why the attempt failed.
    pub error: Option<TaskError>,
}

/// A task as `GET /tasks/{id}` returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    // The tenant's own id; the stored key is `key`.
    /// Server-generated UUID or the client-chosen id.
    #[schema(value_type = String)]
    pub id: TaskId,
    /// The stored key (`tasks.id`): the tenant and [`Task::id`]. Never shown
    /// to clients.
    #[serde(skip)]
    pub key: TaskKey,
    /// The task takes limits (`tasks.limited`), so `GET /tasks/{id}` reads
    /// its [`Task::limits`]; a plain task's view costs no such read. Never
    /// shown to clients.
    #[serde(skip)]
    pub limited: bool,
    /// Handler name.
    pub task: String,
    /// Positional arguments, exactly as submitted: an array of any JSON values.
    #[schema(value_type = Vec<serde_json::Value>)]
    pub args: Box<RawValue>,
    /// Keyword arguments, exactly as submitted: an object of any JSON values.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub kwargs: Box<RawValue>,
    /// Queue the task was submitted to.
    pub queue: String,
    /// Lifecycle status: a known one, or a newer release's passed through verbatim.
    #[schema(schema_with = task_status_or_other)]
    pub status: TaskStatus,
    /// Handler's JSON result once `success` (any JSON value), else null.
    #[schema(value_type = Option<serde_json::Value>)]
    pub result: Option<Box<RawValue>>,
    /// Failure of the last attempt once `failed`, else null.
    pub error: Option<TaskError>,
    /// Number of times a worker has claimed the task.
    pub attempts: i32,
    /// Retries allowed after the first attempt (claims allowed = max_retries + 1).
    pub max_retries: i32,
    /// Per-attempt timeout, seconds.
    pub timeout: f64,
    /// When a `scheduled` task becomes due (countdown, eta or retry backoff).
    pub run_at: Option<DateTime<Utc>>,
    /// Last progress the handler reported, `{percent, message}`.
    pub progress: Option<Progress>,
    /// When cancellation of this `processing` task was requested.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// Worker holding (or last holding) the task.
    pub worker_id: Option<Uuid>,
    /// When the gateway accepted the task.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the task reached a terminal status.
    pub finished_at: Option<DateTime<Utc>>,
    /// W3C trace id (32 hex digits) of the trace the task runs in: the
    /// submitter's `traceparent`, or a new trace when it sent none or an
    /// invalid one; null for tasks stored before traces existed.
    pub trace_id: Option<String>,
    /// The workflow a node belongs to (docs/workflows.md); absent for a task
    /// that is not a node, and in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// A node's parents' task ids; absent for a task that is not a node, and in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parents: Option<Vec<String>>,
    /// The limits the task takes (docs/limits.md), by name: its bucket of
    /// each and whether that bucket holds it back now. `GET /tasks/{id}`
    /// of a task that is not terminal only (a finished task holds and waits
    /// for no slot); absent for a task without limits, and in listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Vec<TaskLimitState>>,
    /// The schedule that fired the task (its id), for tasks fired by a
    /// schedule (ids `sched:<schedule>:...`); else null.
    pub schedule_id: Option<String>,
    /// The tick the task was fired for (a backfilled or triggered run's
    /// period too); null for tasks no schedule fired.
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// One of a task's limits, as `GET /tasks/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskLimitState {
    /// The limit's name.
    pub name: String,
    /// The task's bucket of the limit: the canonical JSON of the key's value,
    /// `(all)` for a limit without a key, `(unresolved)` when the key finds nothing.
    pub bucket: String,
    /// The bucket has no room now (concurrency reached, rate window full or
    /// `concurrency: 0`): for a `held` task, a limit that holds it back. Read
    /// without the bucket's lock: a view, not a decision.
    pub held: bool,
}

impl Task {
    /// Sets [`Task::schedule_id`] and [`Task::scheduled_for`] from its id
    /// (the stored key, tenant prefix included).
    pub fn with_schedule(mut self) -> Self {
        if let Some((schedule, tick)) = crate::schedule::tick_of(self.key.client_id()) {
            self.schedule_id = Some(schedule.to_string());
            self.scheduled_for = Some(tick);
        }
        self
    }
}

/// A worker's state in GET /workers (docs/architecture.md, "Worker states").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// Not (yet) a member of its consumer group: starting, or rejoining.
    Joining,
    /// A member of its group with partitions, and not fenced.
    Ready,
    /// A member of its group with no partitions for longer than the
    /// dead-after threshold: normal with more workers than partitions.
    Idle,
    /// No heartbeat for the fence threshold: it runs and claims nothing.
    Fenced,
    /// Its last heartbeat is older than the dead-after threshold.
    Dead,
    /// Stopped after a graceful shutdown.
    Stopped,
}

impl WorkerState {
    /// The name stored in `workers.state` and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joining => "joining",
            Self::Ready => "ready",
            Self::Idle => "idle",
            Self::Fenced => "fenced",
            Self::Dead => "dead",
            Self::Stopped => "stopped",
        }
    }

    /// Parses a stored name; an unknown one (a newer release's) reads as `joining`.
    pub fn parse(s: &str) -> Self {
        match s {
            "ready" => Self::Ready,
            "idle" => Self::Idle,
            "fenced" => Self::Fenced,
            "dead" => Self::Dead,
            "stopped" => Self::Stopped,
            _ => Self::Joining,
        }
    }
}

/// A worker process as `GET /workers` returns it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Worker {
    /// Fresh per process start.
    pub id: Uuid,
    /// True when the last heartbeat is within the dead-after threshold of the
    /// database clock and the worker has not stopped.
    pub alive: bool,
    /// True when the worker is `alive`, a member of its consumer group and
    /// not fenced (state `ready` or `idle`): what readiness probes use.
    pub ready: bool,
    /// The worker's state: `joining`, `ready`, `idle`, `fenced` as it last
    /// reported it, or `dead` / `stopped` when it is not `alive`.
    pub state: WorkerState,
    /// Host the worker runs on; null for keys without the `operate` scope.
    pub hostname: Option<String>,
    /// Operating-system process id; null for keys without the `operate` scope.
    pub pid: Option<i32>,
    /// yadtq version of the worker; null for keys without the `operate` scope.
    pub version: Option<String>,
    /// Queues the worker consumes.
    pub queues: Vec<String>,
    /// Task names the worker has handlers for.
    pub task_names: Vec<String>,
    /// Tasks it runs at once at most.
    pub concurrency: i32,
    /// The tenants the worker was started for (`--tenants`), whose tasks it
    /// runs while they are dedicated; null for a worker of the shared topics
    /// (every tenant that is not dedicated). Keys without the `cluster` scope
    /// see at most their own tenant in it (`[]`: dedicated to others).
    pub tenants: Option<Vec<String>>,
    /// Process start.
    pub started_at: DateTime<Utc>,
    /// Last heartbeat, database clock.
    pub last_heartbeat_at: DateTime<Utc>,
    /// Set on graceful shutdown.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Tasks running at the last heartbeat.
    pub in_flight: i32,
    /// Tasks finished with `success` by this worker.
    pub processed: i64,
    /// Attempts that ended in failure on this worker.
    pub failed: i64,
    /// Kafka partitions the worker owns, by topic (`{"yadtq.tasks": [0, 5]}`),
    /// as of its last heartbeat; a worker also beats right after a rebalance.
    /// Empty while it has none (e.g. more workers than partitions), once
    /// stopped, and once it is not `alive`.
    pub partitions: std::collections::BTreeMap<String, Vec<i32>>,
}
