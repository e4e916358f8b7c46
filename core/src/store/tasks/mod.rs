//! The `tasks` table and its state machine. Every change of a task's status
//! is one function here, and its statement names the statuses it moves from,
//! so a change that finds the row elsewhere changes nothing:
//!
//! | transition            | from                         | to                                  | by                   | function             | fenced on                          |
//! |-----------------------|------------------------------|-------------------------------------|----------------------|----------------------|------------------------------------|
//! | submit                | (none)                       | `queued`, or `scheduled` with run_at | gateway              | [`insert_batch`], [`insert_each`] | id (an existing id is returned, or a conflict) |
//! | submit with limits    | (none)                       | `held`, then `queued` when its buckets have room; or `scheduled` | gateway | [`crate::store::limits::insert`] | as submit; room counted under the buckets' locks |
//! | release               | `held`                       | `queued`, or `cancelled` when cancel was requested | whoever frees a slot, the leader's pass | [`crate::store::limits::release`] | status; the locks of all the task's buckets |
//! | promote               | `scheduled` (due)            | `queued` (`held` when limited, then released as room allows) | scheduler (leader) | [`promote_due`] | status |
//! | claim                 | `queued`                     | `processing`, attempt + 1           | worker               | [`claim`]            | status                             |
//! | record outcome        | `processing`                 | `success`, `failed`, `cancelled`, or `scheduled` (retry) | worker | [`record_outcomes`] | status, worker id, attempt   |
//! | rescue                | `processing` (dead worker)   | `queued`, `failed` or `cancelled`   | rescuer (leader)     | [`rescue`]           | status, worker id, attempt         |
//! | cancel                | `held`, `waiting`, `queued`, `scheduled` | `cancelled`             | API                  | [`cancel`]           | status                             |
//! | request cancel        | `processing`, or a status this release does not know | unchanged + `cancel_requested_at` | API | [`cancel`]  | status                             |
//! | manual retry          | `failed`, `cancelled`        | `queued` (`held` when limited, then released as room allows) | API | [`retry`] | status; not an unsendable failure; no other holder of its unique key |
//! | refuse record         | `queued` (unpublished)       | `failed` (`record_too_large`, …)    | gateway, publisher   | [`fail_unsendable`]  | status, attempt, `published_at`    |
//! | send back             | `queued` (published)         | `queued` (unpublished)              | worker               | [`resend`]           | status, `published_at`             |
//! | re-route              | `queued` (published) of a tenant whose route changed | `queued` (unpublished) | publisher (leader) | [`reroute_changed`] | status, `published_at`, once per route change |
//! | expire                | `success`, `failed`, `cancelled` | (deleted)                       | cleaner (leader)     | [`delete_expired`]   | status, finished_at                |
//!
//! [`set_progress`] writes progress of a `processing` task, fenced like an outcome.
//!
//! **The `published_at` protocol.** A `queued` row with no `published_at`
//! still has to be sent to Kafka. It is set when the broker acknowledged the
//! row's record ([`mark_published`], only at the attempt count the record
//! carried) or by the claim (a record reached a worker); it is cleared by
//! every transition into `queued` or `scheduled` (promote, rescue, manual
//! retry, a retry outcome), so each of those sends a record of its own, and
//! on a `queued` row whose record went to a route that is no longer its own
//! (send back, re-route), so it is sent again to the route read now. The
//! publisher sends unpublished rows past a grace period
//! ([`fetch_unpublished`]); rows Kafka refuses for the record itself fail
//! ([`fail_unsendable`]). The table above is `Transition::ALL` (built for
//! the tests only), which the store tests walk.
//!
//! The module is split along its seams: `submit` (inserting tasks),
//! `list` (the keyset-paged listing), `transitions` (every change of
//! status but the publisher's) and `publish_pending` (the `published_at`
//! protocol: unpublished rows, marks, refusals, send back, re-route). The
//! row shapes their statements read ([`TaskRow`], `Unpublished`) are here.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Task, TaskStatus};
use crate::names::TaskKey;
use crate::telemetry::TraceContext;

/// One row of the state machine table above.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Due `scheduled` → `queued` ([`promote_due`]).
    Promote,
    /// `queued` → `processing` ([`claim`]).
    Claim,
    /// `processing` → an outcome ([`record_outcomes`]).
    RecordOutcome,
    /// `processing` under a dead worker → `queued`/`failed`/`cancelled` ([`rescue`]).
    Rescue,
    /// Waiting → `cancelled`, or running → cancel requested ([`cancel`]).
    Cancel,
    /// `failed`/`cancelled` → `queued` ([`retry`]).
    Retry,
    /// Unpublished `queued` → `failed` ([`fail_unsendable`]).
    RefuseRecord,
    /// Terminal → deleted ([`delete_expired`]).
    Expire,
    /// Published `queued` → unpublished `queued`, one task ([`resend`]).
    SendBack,
    /// Published `queued` → unpublished `queued`, the tasks of tenants whose
    /// route changed ([`reroute_changed`]).
    Reroute,
}

#[cfg(test)]
impl Transition {
    /// Every transition of an existing task (submission creates the row).
    pub(crate) const ALL: [Transition; 10] = [
        Self::Promote,
        Self::Claim,
        Self::RecordOutcome,
        Self::Rescue,
        Self::Cancel,
        Self::Retry,
        Self::RefuseRecord,
        Self::Expire,
        Self::SendBack,
        Self::Reroute,
    ];

    /// The statuses this transition moves a task from; any other status is
    /// left unchanged by its function.
    pub(crate) fn from(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Self::Promote => &[Scheduled],
            Self::Claim | Self::RefuseRecord | Self::SendBack | Self::Reroute => &[Queued],
            Self::RecordOutcome | Self::Rescue => &[Processing],
            // And any status this release does not know (cancel requested).
            Self::Cancel => &[Waiting, Queued, Scheduled, Processing],
            Self::Retry => &[Failed, Cancelled],
            Self::Expire => &[Success, Failed, Cancelled],
        }
    }
}

/// Task columns as `query_as!` reads them into [`TaskRecord`]; `$before`
/// and `$after` are the statement's text around the column list.
macro_rules! task_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            TaskRecord,
            $before
                + r#"id AS "id!", seq AS "seq!", name AS "name!",
                     args AS "args!: Json<Box<RawValue>>", kwargs AS "kwargs!: Json<Box<RawValue>>",
                     queue AS "queue!", status AS "status!: TaskStatus",
                     result AS "result?: Json<Box<RawValue>>", error AS "error?: Json<serde_json::Value>",
                     attempts AS "attempts!", max_retries AS "max_retries!", timeout_seconds AS "timeout_seconds!",
                     run_at AS "run_at?", progress AS "progress?: Json<serde_json::Value>",
                     cancel_requested_at AS "cancel_requested_at?", worker_id AS "worker_id?",
                     created_at AS "created_at!", started_at AS "started_at?", finished_at AS "finished_at?",
                     request_hash AS "request_hash!", traceparent AS "traceparent?", limited AS "limited!""#
                + $after
            $(, $arg)*
        )
    };
}

/// A task row as stored ([`task_query!`]); [`TaskRow`] is its client view.
struct TaskRecord {
    id: String,
    seq: i64,
    name: String,
    args: Json<Box<RawValue>>,
    kwargs: Json<Box<RawValue>>,
    queue: String,
    status: TaskStatus,
    result: Option<Json<Box<RawValue>>>,
    error: Option<Json<serde_json::Value>>,
    attempts: i32,
    max_retries: i32,
    timeout_seconds: f64,
    run_at: Option<DateTime<Utc>>,
    progress: Option<Json<serde_json::Value>>,
    cancel_requested_at: Option<DateTime<Utc>>,
    worker_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    request_hash: String,
    traceparent: Option<String>,
    limited: bool,
}

impl From<TaskRecord> for TaskRow {
    fn from(r: TaskRecord) -> Self {
        let key = TaskKey::from_stored(r.id);
        TaskRow {
            task: Task {
                id: key.task_id(),
                key,
                limited: r.limited,
                task: r.name,
                args: r.args.0,
                kwargs: r.kwargs.0,
                queue: r.queue,
                status: r.status,
                result: r.result.map(|j| j.0),
                // A document this release cannot read (a newer one's) shows as none.
                error: r.error.and_then(|e| serde_json::from_value(e.0).ok()),
                attempts: r.attempts,
                max_retries: r.max_retries,
                timeout: r.timeout_seconds,
                run_at: r.run_at,
                progress: r.progress.and_then(|p| serde_json::from_value(p.0).ok()),
                cancel_requested_at: r.cancel_requested_at,
                worker_id: r.worker_id,
                created_at: r.created_at,
                started_at: r.started_at,
                finished_at: r.finished_at,
                trace_id: r.traceparent.as_deref().and_then(TraceContext::trace_id).map(str::to_string),
                schedule_id: None,
                scheduled_for: None,
                workflow_id: None,
                parents: None,
                limits: None,
            }
            .with_schedule(),
            request_hash: r.request_hash,
            seq: r.seq,
            limited: r.limited,
        }
    }
}

/// Columns of an [`UnpublishedRecord`], for `query_as!`.
macro_rules! unpublished_query {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            UnpublishedRecord,
            $before
                + r#"id AS "id!", name AS "name!", args AS "args!: Json<Box<RawValue>>",
                     kwargs AS "kwargs!: Json<Box<RawValue>>", queue AS "queue!", attempts AS "attempts!",
                     created_at AS "created_at!", status AS "status!: TaskStatus""#
                + $after
            $(, $arg)*
        )
    };
}
pub(in crate::store) use unpublished_query;

/// An [`Unpublished`] row, with its status (the rescuer's rows, and the
/// nodes a workflow fan-in moves, may be `failed` or `cancelled` instead).
pub(in crate::store) struct UnpublishedRecord {
    pub(in crate::store) status: TaskStatus,
    pub(in crate::store) id: String,
    pub(in crate::store) name: String,
    pub(in crate::store) args: Json<Box<RawValue>>,
    pub(in crate::store) kwargs: Json<Box<RawValue>>,
    pub(in crate::store) queue: String,
    pub(in crate::store) attempts: i32,
    pub(in crate::store) created_at: DateTime<Utc>,
}

impl From<UnpublishedRecord> for Unpublished {
    fn from(r: UnpublishedRecord) -> Self {
        Unpublished {
            id: TaskKey::from_stored(r.id),
            name: r.name,
            args: r.args.0,
            kwargs: r.kwargs.0,
            queue: r.queue,
            attempts: r.attempts,
            created_at: r.created_at,
        }
    }
}

mod list;
mod publish_pending;
mod submit;
mod transitions;

pub use list::{list, TaskFilter, TaskPage};
pub(crate) use publish_pending::{fail_unsendable, fetch_unpublished, reroute_changed};
pub use publish_pending::{mark_published, resend, Refused, Resent, Sent, Unpublished};
#[cfg(test)]
pub(super) use submit::insert_rows;
pub use submit::{insert_batch, insert_each, BatchInsert, Inserted, NewTask};
pub(super) use submit::{insert_rows_planned, insert_rows_waiting};
pub(super) use transitions::record_outcomes_freeing;
pub use transitions::{
    cancel, cancel_releasing, claim, record_outcomes, record_outcomes_releasing, retry, set_progress,
    AttemptOutcomeRecord, CancelResult, ClaimResult, Claimed, Outcome, Recorded, RetryResult,
};
pub(crate) use transitions::{delete_expired, promote_due, record_outcomes_in, rescue, retry_in};

/// A task row with the request hash used for idempotent submission.
#[derive(Debug)]
pub struct TaskRow {
    /// The client-visible task.
    pub task: Task,
    /// Hash of name, args, kwargs and queue as submitted.
    pub request_hash: String,
    /// Insertion order (keyset cursor of `GET /tasks`).
    pub seq: i64,
    /// The task takes limits (`tasks.limited`): it named one at submit, or
    /// a limit's `tasks` list named its task (found by the insert itself).
    /// A `held` task is limited; a limited task's outcome takes the limits path.
    pub limited: bool,
}

/// Per-task retry backoff, seconds; `None` takes the worker's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry, seconds.
    pub base_seconds: Option<f64>,
    /// Longest delay between retries, seconds.
    pub cap_seconds: Option<f64>,
}

pub(in crate::store) async fn get_in(conn: &mut PgConnection, key: &TaskKey) -> Result<Option<TaskRow>, StoreError> {
    let row = task_query!("SELECT ", " FROM tasks WHERE id = $1", key.as_str()).fetch_optional(conn).await?;
    Ok(row.map(TaskRow::from))
}

/// Reads one task, `None` when no task has this key.
pub async fn get(pool: &PgPool, key: &TaskKey) -> Result<Option<TaskRow>, StoreError> {
    get_in(&mut *pool.acquire().await?, key).await
}

/// Reads the tasks of `keys` in one statement (the gateway's shared read of
/// the tasks its waiters watch); keys with no task are left out.
pub async fn get_many(pool: &PgPool, keys: &[TaskKey]) -> Result<Vec<TaskRow>, StoreError> {
    let keys: Vec<&str> = keys.iter().map(TaskKey::as_str).collect();
    let rows = task_query!("SELECT ", " FROM tasks WHERE id = ANY($1)", &keys as &[&str]).fetch_all(pool).await?;
    Ok(rows.into_iter().map(TaskRow::from).collect())
}
