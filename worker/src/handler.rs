//! Handlers: the functions a worker runs for a task name, and the registry
//! that maps names to them. Register your own with [`Registry::register`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use yadtq_core::model::Progress;

/// Where a handler's progress reports go (the worker stores them on the task).
pub type ProgressFn = Arc<dyn Fn(Progress) -> BoxFuture<'static, ()> + Send + Sync>;

/// Whether this process may still consider itself the attempt's owner: false
/// once it has gone without a heartbeat for the fence threshold (read from the
/// clock at the call, so it is false at once after a freeze, before the fence
/// has aborted anything).
pub type OwnerFn = Arc<dyn Fn() -> bool + Send + Sync>;

/// What a handler receives for one attempt.
#[derive(Clone)]
pub struct TaskContext {
    /// Task id.
    pub id: String,
    /// Handler name the task was submitted with.
    pub task: String,
    /// Attempt number, 1 for the first claim: the fencing token. It only
    /// grows (a manual retry continues the count), so a downstream system that
    /// stores the highest attempt it has seen per task can refuse the writes
    /// of a stale attempt that runs on after its worker was frozen.
    pub attempt: i32,
    /// Positional arguments (the submitted JSON array).
    pub args: Vec<Value>,
    /// Keyword arguments (the submitted JSON object).
    pub kwargs: Map<String, Value>,
    /// Cancelled when the attempt must stop (timeout, shutdown past its grace,
    /// or the worker fencing itself); long handlers should watch it.
    pub cancel: CancellationToken,
    /// Sink for [`TaskContext::report_progress`]; `None` drops reports.
    pub progress: Option<ProgressFn>,
    /// Backs [`TaskContext::still_owner`]; `None` leaves only `cancel` to tell.
    pub owner: Option<OwnerFn>,
    /// The attempt's `run` span as W3C trace context (the submitter's trace
    /// id), which HTTP and command handlers pass on; `None` when there is no
    /// span (tracing not initialised).
    pub trace: Option<yadtq_core::telemetry::TraceContext>,
    /// A workflow node's parents by ref, `{ref: {id, status, result, error}}`
    /// (docs/workflows.md), read from PostgreSQL at claim; `None` for a task
    /// that is not a node, an empty object for a node without parents.
    pub parents: Option<Value>,
}

impl std::fmt::Debug for TaskContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskContext")
            .field("id", &self.id)
            .field("task", &self.task)
            .field("attempt", &self.attempt)
            .field("args", &self.args)
            .field("kwargs", &self.kwargs)
            .finish_non_exhaustive()
    }
}

impl TaskContext {
    /// The tick a schedule fired this task for (docs/schedules.md): the
    /// period a backfilled or late run is for. `None` for tasks no schedule
    /// fired. Derived from the task id (`sched:<schedule>:<unix seconds>`).
    pub fn scheduled_for(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let key = yadtq_core::names::TaskKey::from_stored(self.id.clone());
        yadtq_core::schedule::tick_of(key.client_id()).map(|(_, tick)| tick)
    }

    /// Advisory: true while this attempt has not been cancelled and its worker
    /// has heartbeated within the fence threshold. A `true` can be stale the
    /// moment it is returned (the process can be paused right after), so side
    /// effects that must not happen twice are guarded by [`TaskContext::attempt`]
    /// checked downstream, not by this call.
    pub fn still_owner(&self) -> bool {
        !self.cancel.is_cancelled() && self.owner.as_ref().is_none_or(|owner| owner())
    }

    /// Reports progress (`percent` 0-100, clamped) shown in `GET /tasks/{id}`
    /// and the task's event stream. Best effort: a failed write is logged, not returned.
    pub async fn report_progress(&self, percent: f64, message: impl Into<String>) {
        if let Some(sink) = &self.progress {
            let percent = if percent.is_finite() { percent.clamp(0.0, 100.0) } else { 0.0 };
            sink(Progress { percent, message: message.into() }).await;
        }
    }
}

/// A handler's failure: `kind` and `message` are recorded as the task's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct HandlerError {
    /// Machine-readable class, e.g. `invalid_arguments`, `handler_error`.
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
    /// Whether another attempt could succeed (used by retries).
    pub retryable: bool,
}

impl HandlerError {
    /// The arguments do not fit the handler: permanent, kind `invalid_arguments`.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self { kind: "invalid_arguments".into(), message: message.into(), retryable: false }
    }

    /// A failure worth another attempt: kind `handler_error`.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self { kind: "handler_error".into(), message: message.into(), retryable: true }
    }

    /// A failure no retry can fix, with a kind of the caller's choosing.
    pub fn permanent(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind: kind.into(), message: message.into(), retryable: false }
    }
}

/// A registered handler: an async function from [`TaskContext`] to a JSON result.
pub type HandlerFn = Arc<dyn Fn(TaskContext) -> BoxFuture<'static, Result<Value, HandlerError>> + Send + Sync>;

/// Task name to handler.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<String, HandlerFn>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the built-in handlers (see [`crate::builtins`]).
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        crate::builtins::register(&mut r);
        r
    }

    /// Registers `f` for task name `name`, replacing any earlier handler of that name.
    pub fn register<F, Fut>(&mut self, name: &str, f: F) -> &mut Self
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, HandlerError>> + Send + 'static,
    {
        self.handlers.insert(name.to_string(), Arc::new(move |ctx| Box::pin(f(ctx))));
        self
    }

    /// The handler for `name`, if any.
    pub fn get(&self, name: &str) -> Option<HandlerFn> {
        self.handlers.get(name).cloned()
    }

    /// Registered names, sorted (reported in `GET /workers`).
    pub fn names(&self) -> Vec<String> {
        self.handlers.keys().cloned().collect()
    }
}
