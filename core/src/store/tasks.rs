//! The `tasks` table and its state machine. Every change of a task's status
//! is one function here, and its statement names the statuses it moves from,
//! so a change that finds the row elsewhere changes nothing:
//!
//! | transition            | from                         | to                                  | by                   | function             | fenced on                          |
//! |-----------------------|------------------------------|-------------------------------------|----------------------|----------------------|------------------------------------|
//! | submit                | (none)                       | `queued`, or `scheduled` with run_at | gateway              | [`insert_batch`], [`insert_each`] | id (an existing id is returned, or a conflict) |
//! | promote               | `scheduled` (due)            | `queued`                            | scheduler (leader)   | [`promote_due`]      | status                             |
//! | claim                 | `queued`                     | `processing`, attempt + 1           | worker               | [`claim`]            | status                             |
//! | record outcome        | `processing`                 | `success`, `failed`, `cancelled`, or `scheduled` (retry) | worker | [`record_outcomes`] | status, worker id, attempt   |
//! | rescue                | `processing` (dead worker)   | `queued`, `failed` or `cancelled`   | rescuer (leader)     | [`rescue`]           | status, worker id, attempt         |
//! | cancel                | `queued`, `scheduled`        | `cancelled`                         | API                  | [`cancel`]           | status                             |
//! | request cancel        | `processing`, or a status this release does not know | unchanged + `cancel_requested_at` | API | [`cancel`]  | status                             |
//! | manual retry          | `failed`, `cancelled`        | `queued`                            | API                  | [`retry`]            | status; not an unsendable failure; no other holder of its unique key |
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
//! ([`fail_unsendable`]). The table above is [`Transition::ALL`], which the
//! store tests walk.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::events::notify_changed;
use super::unique::Unique;
use super::StoreError;
use crate::model::{Progress, Task, TaskError, TaskStatus};
use crate::names::{QueueName, TaskName};
use crate::telemetry::TraceContext;

/// One row of the state machine table above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
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

impl Transition {
    /// Every transition of an existing task (submission creates the row).
    pub const ALL: [Transition; 10] = [
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
    pub fn from(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Self::Promote => &[Scheduled],
            Self::Claim | Self::RefuseRecord | Self::SendBack | Self::Reroute => &[Queued],
            Self::RecordOutcome | Self::Rescue => &[Processing],
            // And any status this release does not know (cancel requested).
            Self::Cancel => &[Queued, Scheduled, Processing],
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
                     request_hash AS "request_hash!", traceparent AS "traceparent?""#
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
}

impl From<TaskRecord> for TaskRow {
    fn from(r: TaskRecord) -> Self {
        TaskRow {
            task: Task {
                id: r.id,
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
            },
            request_hash: r.request_hash,
            seq: r.seq,
        }
    }
}

/// A task row with the request hash used for idempotent submission.
#[derive(Debug)]
pub struct TaskRow {
    /// The client-visible task.
    pub task: Task,
    /// Hash of name, args, kwargs and queue as submitted.
    pub request_hash: String,
    /// Insertion order (keyset cursor of `GET /tasks`).
    pub seq: i64,
}

/// Per-task retry backoff, seconds; `None` takes the worker's default.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry, seconds.
    pub base_seconds: Option<f64>,
    /// Longest delay between retries, seconds.
    pub cap_seconds: Option<f64>,
}

/// A task to insert, already validated by the gateway.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Stored task key: the tenant's id (server UUID or client-chosen)
    /// through [`crate::auth::task_key`].
    pub id: String,
    /// Tenant that submitted it.
    pub tenant: String,
    /// Handler name.
    pub name: TaskName,
    /// JSON array text, kept as sent.
    pub args: String,
    /// JSON object text, kept as sent.
    pub kwargs: String,
    /// Queue name.
    pub queue: QueueName,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Per-attempt timeout in seconds.
    pub timeout_seconds: f64,
    /// Not before this time (countdown / eta): the task starts `scheduled`.
    pub run_at: Option<DateTime<Utc>>,
    /// Retry backoff.
    pub retry_backoff: Backoff,
    /// Hash of the request, compared when the id is submitted again.
    pub request_hash: String,
    /// The gateway's `submit` span, under the submitter's trace when it sent one.
    pub trace: Option<TraceContext>,
    /// At most one task holding this key ([`super::unique`]); `None`: no key.
    pub unique: Option<Unique>,
}

/// Result of an insert for one task.
#[derive(Debug)]
pub enum Inserted {
    /// The row was created (`queued`, or `scheduled` with a `run_at`).
    Created(TaskRow),
    /// A task with this id and the same request already existed; returned unchanged.
    Existing(TaskRow),
    /// A task with this id exists with a different request (409); nothing changed.
    Conflict(String),
    /// Another task holds the submission's unique key: returned unchanged,
    /// nothing created. Wins over a task found by the submission's id.
    Unique(TaskRow),
}

/// Result of an all-or-nothing batch insert.
#[derive(Debug)]
pub enum BatchInsert {
    /// Every task was created or found unchanged, in input order.
    Done(Vec<Inserted>),
    /// This id exists with a different request: nothing was inserted.
    Conflict(String),
}

/// Inserts a batch in one transaction (one `UNNEST` statement), all or
/// nothing. An id that already exists with the same request hash is returned
/// as [`Inserted::Existing`] (idempotent submission).
pub async fn insert_batch(pool: &PgPool, tasks: &[NewTask]) -> Result<BatchInsert, StoreError> {
    let mut tx = pool.begin().await?;
    let out = super::unique::insert_in(&mut tx, tasks).await?;
    if let Some(id) = out.iter().find_map(|i| match i {
        Inserted::Conflict(id) => Some(id.clone()),
        _ => None,
    }) {
        return Ok(BatchInsert::Conflict(id)); // dropping the transaction rolls the batch back
    }
    tx.commit().await?;
    Ok(BatchInsert::Done(out))
}

/// Inserts tasks that are independent of each other (concurrent submissions
/// gathered by the gateway) with one statement and one commit; each gets its
/// own result, conflicts included.
pub async fn insert_each(pool: &PgPool, tasks: &[NewTask]) -> Result<Vec<Inserted>, StoreError> {
    super::unique::insert_in(&mut *pool.acquire().await?, tasks).await
}

/// Inserts `tasks` in one statement; returns the rows created, by id.
/// Rows with a unique key are inserted first, in key order, then the others
/// in id order, as every other batch statement locks them: two inserts
/// sharing ids (or keys) in different orders would each wait for the other's
/// uncommitted row (a deadlock PostgreSQL breaks after a second by failing
/// one). A row that collides on its id or its unique key inserts nothing
/// (`ON CONFLICT DO NOTHING`); [`super::unique::insert_in`] resolves it.
pub(super) async fn insert_rows(
    conn: &mut PgConnection,
    tasks: &[NewTask],
) -> Result<HashMap<String, TaskRow>, StoreError> {
    let col = |f: fn(&NewTask) -> String| tasks.iter().map(f).collect::<Vec<String>>();
    let unique = |f: fn(&NewTask, &Unique) -> Option<String>| {
        tasks.iter().map(|t| t.unique.as_ref().and_then(|u| f(t, u))).collect::<Vec<Option<String>>>()
    };
    let rows = task_query!(
        "INSERT INTO tasks (id, name, args, kwargs, queue, status, max_retries, timeout_seconds, run_at,
                            retry_backoff_base, retry_backoff_cap, request_hash, tenant, traceparent, tracestate,
                            unique_key, unique_states)
         SELECT id, name, args::json, kwargs::json, queue,
                CASE WHEN run_at IS NULL THEN 'queued' ELSE 'scheduled' END,
                max_retries, timeout_seconds, run_at, base, cap, hash, tenant, tp, ts,
                CASE WHEN ubase IS NOT NULL THEN yadtq_unique_key(ubase, ufor) END AS ukey,
                string_to_array(ustates, ',')
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::float8[],
                     $8::timestamptz[], $9::float8[], $10::float8[], $11::text[], $12::text[], $13::text[], $14::text[],
                     $15::text[], $16::bigint[], $17::text[])
              AS t(id, name, args, kwargs, queue, max_retries, timeout_seconds, run_at, base, cap, hash, tenant, tp, ts,
                   ubase, ufor, ustates)
         ORDER BY ukey, id
         ON CONFLICT DO NOTHING RETURNING ",
        "",
        &col(|t| t.id.clone()),
        &col(|t| t.name.to_string()),
        &col(|t| t.args.clone()),
        &col(|t| t.kwargs.clone()),
        &col(|t| t.queue.to_string()),
        &tasks.iter().map(|t| t.max_retries).collect::<Vec<_>>(),
        &tasks.iter().map(|t| t.timeout_seconds).collect::<Vec<_>>(),
        &tasks.iter().map(|t| t.run_at).collect::<Vec<_>>() as &[Option<DateTime<Utc>>],
        &tasks.iter().map(|t| t.retry_backoff.base_seconds).collect::<Vec<_>>() as &[Option<f64>],
        &tasks.iter().map(|t| t.retry_backoff.cap_seconds).collect::<Vec<_>>() as &[Option<f64>],
        &col(|t| t.request_hash.clone()),
        &col(|t| t.tenant.clone()),
        &tasks.iter().map(|t| t.trace.as_ref().map(|c| c.traceparent.clone())).collect::<Vec<_>>()
            as &[Option<String>],
        &tasks.iter().map(|t| t.trace.as_ref().map(|c| c.tracestate.clone())).collect::<Vec<_>>()
            as &[Option<String>],
        &unique(|t, u| Some(u.base(&t.tenant, &t.name))) as &[Option<String>],
        &tasks.iter().map(|t| t.unique.as_ref().and_then(|u| u.for_seconds)).collect::<Vec<_>>() as &[Option<i64>],
        &unique(|_, u| u.states()) as &[Option<String>],
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id.clone(), TaskRow::from(r))).collect())
}

pub(super) async fn get_in(conn: &mut PgConnection, id: &str) -> Result<Option<TaskRow>, StoreError> {
    let row = task_query!("SELECT ", " FROM tasks WHERE id = $1", id).fetch_optional(conn).await?;
    Ok(row.map(TaskRow::from))
}

/// Reads one task, `None` when no task has this id.
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<TaskRow>, StoreError> {
    get_in(&mut *pool.acquire().await?, id).await
}

/// Filters of [`list`]; `None` matches everything.
#[derive(Debug, Default)]
pub struct TaskFilter {
    /// Status.
    pub status: Option<TaskStatus>,
    /// Task (handler) name.
    pub task: Option<String>,
    /// Queue name.
    pub queue: Option<String>,
    /// Worker id.
    pub worker: Option<Uuid>,
}

/// One page of [`list`].
#[derive(Debug)]
pub struct TaskPage {
    /// Newest first.
    pub tasks: Vec<Task>,
    /// Cursor of the next page (`before`), when there may be one.
    pub next: Option<i64>,
}

/// Up to `limit` tasks of `tenant` matching `f`, newest first, strictly
/// older than the `before` cursor (a `seq` from an earlier page). `queues`
/// are the queues the caller may see (`None`: all of them); a `queue` filter
/// outside them matches nothing.
///
/// Each filter has an index leading with the tenant and ending with `seq`
/// (migration 0010), so a page reads few index entries whatever the table's
/// size; `store::list_plans` checks the plans PostgreSQL chooses for this
/// very statement (found by its `store::tasks::list` marker in `.sqlx/`) on
/// 1,000,000 rows. Optional filters are written `$n IS NULL OR …`: PostgreSQL
/// plans each execution with the values bound (a custom plan), which folds
/// the unused filters away and estimates the used ones from their values; a
/// generic plan, which could use no filter's index, costs more than those
/// (its `LIMIT` is unknown), so the plan cache does not settle on it. The
/// test checks that too, after warming the statement up as a pooled
/// connection would. The visible queues are one `= ANY` filter rather than
/// one index range per queue: a per-queue subquery is planned once for every
/// queue, without the value, and picked the wrong index in that test.
///
/// Errors: [`StoreError`] when PostgreSQL fails or cannot be reached.
pub async fn list(
    pool: &PgPool,
    tenant: &str,
    queues: Option<&[String]>,
    f: &TaskFilter,
    limit: i64,
    before: Option<i64>,
) -> Result<TaskPage, StoreError> {
    // PostgreSQL does not see that a queue outside the visible ones matches
    // nothing: it would read the whole tenant's index looking for a match.
    let queues = match (f.queue.as_ref(), queues) {
        (Some(q), Some(visible)) if !visible.contains(q) => return Ok(TaskPage { tasks: Vec::new(), next: None }),
        (Some(_), _) => None, // the queue filter is the narrower one
        (None, visible) => visible,
    };
    let rows = task_query!(
        "/* store::tasks::list */ SELECT ",
        " FROM tasks
         WHERE tenant = $1 AND ($2::text[] IS NULL OR queue = ANY($2))
           AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR name = $4)
           AND ($5::text IS NULL OR queue = $5) AND ($6::uuid IS NULL OR worker_id = $6)
           AND ($7::bigint IS NULL OR seq < $7)
         ORDER BY seq DESC LIMIT $8",
        tenant,
        queues,
        f.status.as_ref().map(TaskStatus::as_str),
        f.task.as_deref(),
        f.queue.as_deref(),
        f.worker,
        before,
        limit,
    )
    .fetch_all(pool)
    .await?;
    let next = if rows.len() as i64 == limit { rows.last().map(|r| r.seq) } else { None };
    Ok(TaskPage { tasks: rows.into_iter().map(|r| TaskRow::from(r).task).collect(), next })
}

/// What `POST /tasks/{id}/cancel` did.
#[derive(Debug)]
pub enum CancelResult {
    /// `queued` or `scheduled`: now `cancelled`.
    Cancelled(TaskRow),
    /// `processing`: cancellation requested; the owner aborts it within a
    /// heartbeat. Also a status this release does not know: requested, left
    /// to the release that knows it.
    Requested(TaskRow),
    /// Already terminal: nothing changed.
    Terminal(TaskRow),
    /// No such task.
    NotFound,
}

/// Cancels a task: at once when it is `queued` or `scheduled`, by request
/// (`cancel_requested_at`, status unchanged) when it is `processing` or in a
/// status this release does not know (a newer release's, which honours the
/// request when it next moves the task).
pub async fn cancel(pool: &PgPool, id: &str) -> Result<CancelResult, StoreError> {
    let row = task_query!(
        "UPDATE tasks SET
             status = CASE WHEN status IN ('queued', 'scheduled') THEN 'cancelled' ELSE status END,
             cancel_requested_at = coalesce(cancel_requested_at, now()),
             finished_at = CASE WHEN status IN ('queued', 'scheduled') THEN now() ELSE finished_at END,
             error = CASE WHEN status IN ('queued', 'scheduled')
                          THEN jsonb_build_object('kind', 'cancelled', 'message', 'cancelled on request')
                          ELSE error END
         WHERE id = $1 AND status NOT IN ('success', 'failed', 'cancelled')
         RETURNING ",
        "",
        id
    )
    .fetch_optional(pool)
    .await?;
    match row.map(TaskRow::from) {
        Some(row) if row.task.status == TaskStatus::Cancelled => {
            notify_changed(pool, vec![row.task.id.clone()]);
            Ok(CancelResult::Cancelled(row))
        }
        Some(row) => Ok(CancelResult::Requested(row)),
        None => Ok(get(pool, id).await?.map_or(CancelResult::NotFound, CancelResult::Terminal)),
    }
}

/// What `POST /tasks/{id}/retry` did.
#[derive(Debug)]
pub enum RetryResult {
    /// Back to `queued` (unpublished) for one more attempt.
    Requeued(TaskRow),
    /// In a status that cannot be retried, or failed because its record can
    /// never be sent (an error kind in [`crate::kafka::UNSENDABLE_KINDS`]): unchanged.
    NotRetryable(TaskRow),
    /// Its unique key is held by another task now ([`super::unique`]):
    /// unchanged, since requeueing it would make two tasks hold the key.
    UniqueHeld,
    /// No such task.
    NotFound,
}

/// Puts a `failed` or `cancelled` task back to `queued` for one more attempt
/// (its retry budget is raised to allow it), unless another task holds its
/// unique key ([`RetryResult::UniqueHeld`]).
pub async fn retry(pool: &PgPool, id: &str) -> Result<RetryResult, StoreError> {
    let unsendable: Vec<String> = crate::kafka::UNSENDABLE_KINDS.iter().map(|k| k.to_string()).collect();
    let row = match task_query!(
        "UPDATE tasks SET status = 'queued', published_at = NULL, max_retries = GREATEST(max_retries, attempts),
             result = NULL, error = NULL, finished_at = NULL, cancel_requested_at = NULL, run_at = NULL,
             progress = NULL
         WHERE id = $1 AND status IN ('failed', 'cancelled')
           AND NOT (status = 'failed' AND coalesce(error->>'kind', '') = ANY($2))
         RETURNING ",
        "",
        id,
        &unsendable
    )
    .fetch_optional(pool)
    .await
    {
        Err(e) if super::unique::is_violation(&e) => return Ok(RetryResult::UniqueHeld),
        row => row?,
    };
    match row {
        Some(row) => {
            notify_changed(pool, vec![id.to_string()]);
            Ok(RetryResult::Requeued(row.into()))
        }
        None => Ok(get(pool, id).await?.map_or(RetryResult::NotFound, RetryResult::NotRetryable)),
    }
}

/// A task this worker now owns, read from the row (the system of record), not the record.
#[derive(Debug)]
pub struct Claimed {
    /// Handler name.
    pub name: String,
    /// JSON array text.
    pub args: Box<RawValue>,
    /// JSON object text.
    pub kwargs: Box<RawValue>,
    /// This attempt's number (1 for the first claim).
    pub attempt: i32,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retries allowed after the first attempt.
    pub max_retries: i32,
    /// Retry backoff the task sets.
    pub retry_backoff: Backoff,
    /// The trace context stored at submission, if any.
    pub trace: Option<TraceContext>,
}

/// What [`claim`] found for one id.
#[derive(Debug)]
pub enum ClaimResult {
    /// Now `processing` under the claiming worker: run it.
    Claimed(Claimed),
    /// Not `queued` (already claimed, finished, or unknown): skip its record.
    NotQueued,
}

impl ClaimResult {
    /// The claim, if the task was claimed.
    pub fn as_claimed(&self) -> Option<&Claimed> {
        match self {
            Self::Claimed(c) => Some(c),
            Self::NotQueued => None,
        }
    }
}

/// Moves `queued` tasks among `ids` to `processing` for `worker_id`, counts
/// the attempt and opens its `task_attempts` row, in one statement. Returns
/// one [`ClaimResult`] per id, in order. An id listed twice gets its claim
/// once (the second is [`ClaimResult::NotQueued`]).
pub async fn claim(pool: &PgPool, ids: &[String], worker_id: Uuid) -> Result<Vec<ClaimResult>, StoreError> {
    let rows = sqlx::query!(
        r#"WITH locked AS (
             SELECT t.id FROM UNNEST($1::text[]) AS u(id) JOIN tasks t ON t.id = u.id
             WHERE t.status = 'queued' ORDER BY t.id FOR UPDATE OF t
         ), claimed AS (
             UPDATE tasks t SET status = 'processing', attempts = attempts + 1, worker_id = $2,
                    started_at = now(), error = NULL, progress = NULL,
                    published_at = coalesce(published_at, now())
             FROM locked l WHERE t.id = l.id AND t.status = 'queued'
             RETURNING t.id, name, args, kwargs, attempts, timeout_seconds,
                       max_retries, retry_backoff_base, retry_backoff_cap, traceparent, tracestate
         ), attempt AS (
             INSERT INTO task_attempts (task_id, attempt, worker_id)
             SELECT id, attempts, $2 FROM claimed
         )
         SELECT id AS "id!", name AS "name!", args AS "args!: Json<Box<RawValue>>",
                kwargs AS "kwargs!: Json<Box<RawValue>>", attempts AS "attempts!",
                timeout_seconds AS "timeout_seconds!", max_retries AS "max_retries!",
                retry_backoff_base, retry_backoff_cap, traceparent, tracestate
         FROM claimed"#,
        ids,
        worker_id
    )
    .fetch_all(pool)
    .await?;
    let mut by_id = HashMap::with_capacity(rows.len());
    for r in rows {
        let claimed = Claimed {
            name: r.name,
            args: r.args.0,
            kwargs: r.kwargs.0,
            attempt: r.attempts,
            timeout: crate::config::secs(r.timeout_seconds),
            max_retries: r.max_retries,
            retry_backoff: Backoff { base_seconds: r.retry_backoff_base, cap_seconds: r.retry_backoff_cap },
            trace: r
                .traceparent
                .map(|traceparent| TraceContext { traceparent, tracestate: r.tracestate.unwrap_or_default() }),
        };
        by_id.insert(r.id, claimed);
    }
    notify_changed(pool, by_id.keys().cloned().collect());
    Ok(ids.iter().map(|id| by_id.remove(id).map_or(ClaimResult::NotQueued, ClaimResult::Claimed)).collect())
}

/// How an attempt ended, as recorded by its worker.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The handler returned this JSON text: task `success`.
    Success(String),
    /// The handler failed for good (or no attempts are left): task `failed`.
    Failed(TaskError),
    /// The handler failed but may succeed later: task `scheduled` again, due
    /// after `delay`; the attempt is recorded as failed.
    Retry {
        /// Why the attempt failed.
        error: TaskError,
        /// Backoff before the next attempt.
        delay: Duration,
    },
    /// The attempt was aborted on a cancel request: task `cancelled`.
    Cancelled,
}

/// One outcome to record.
#[derive(Debug, Clone)]
pub struct AttemptOutcomeRecord<'a> {
    /// Task id.
    pub task_id: &'a str,
    /// The attempt number the worker claimed.
    pub attempt: i32,
    /// How it ended.
    pub outcome: &'a Outcome,
}

/// Whether a fenced write took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Written: the task was still `processing` under this worker and attempt.
    Written,
    /// Not written: the task moved on (rescued, cancelled, finished elsewhere).
    Fenced,
}

/// Records outcomes of attempts by `worker_id` in one statement, closing their
/// attempt rows. Fenced per task: an outcome changes nothing unless its task is
/// still `processing` under this worker and attempt. Returns, per input in
/// order, whether it was written.
pub async fn record_outcomes(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<Vec<Recorded>, StoreError> {
    let as_text = |e: &TaskError| serde_json::to_string(e).expect("error serialises");
    let cancelled = as_text(&TaskError::new("cancelled", "cancelled on request"));
    let n = outcomes.len();
    let (mut ids, mut attempts, mut statuses, mut attempt_outcomes) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut results, mut errors, mut delays) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for o in outcomes {
        use crate::model::AttemptOutcome as A;
        // `&'static` statuses (constants), so their names borrow nothing local.
        let (status, attempt_outcome, result, error, delay): (&'static TaskStatus, _, _, _, _) = match o.outcome {
            Outcome::Success(json) => (&TaskStatus::Success, A::Success, Some(json.as_str()), None, 0.0),
            Outcome::Failed(e) => (&TaskStatus::Failed, A::Failed, None, Some(as_text(e)), 0.0),
            Outcome::Retry { error, delay } => {
                (&TaskStatus::Scheduled, A::Failed, None, Some(as_text(error)), delay.as_secs_f64())
            }
            Outcome::Cancelled => (&TaskStatus::Cancelled, A::Cancelled, None, Some(cancelled.clone()), 0.0),
        };
        ids.push(o.task_id);
        attempts.push(o.attempt);
        statuses.push(status.as_str());
        attempt_outcomes.push(attempt_outcome.as_str());
        results.push(result);
        errors.push(error);
        delays.push(delay);
    }
    let done = sqlx::query!(
        r#"WITH input AS (
             SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[])
                 AS i(id, attempt, status, result, error, attempt_outcome, delay)
         ), locked AS (
             SELECT t.id FROM input i JOIN tasks t ON t.id = i.id ORDER BY t.id FOR UPDATE OF t
         ), done AS (
             UPDATE tasks t SET status = i.status, result = i.result::json, error = i.error::jsonb,
                 finished_at = CASE WHEN i.status = 'scheduled' THEN NULL ELSE now() END,
                 run_at = CASE WHEN i.status = 'scheduled' THEN now() + make_interval(secs => i.delay) ELSE t.run_at END,
                 published_at = CASE WHEN i.status = 'scheduled' THEN NULL ELSE t.published_at END
             FROM input i JOIN locked l ON l.id = i.id
             WHERE t.id = i.id AND t.status = 'processing' AND t.worker_id = $8 AND t.attempts = i.attempt
             RETURNING t.id, i.attempt, i.attempt_outcome, i.error
         ), closed AS (
             UPDATE task_attempts a SET finished_at = now(), outcome = d.attempt_outcome, error = d.error::jsonb
             FROM done d WHERE a.task_id = d.id AND a.attempt = d.attempt AND a.worker_id = $8
         )
         SELECT id AS "id!", attempt AS "attempt!" FROM done"#,
        &ids as &[&str],
        &attempts,
        &statuses as &[&str],
        &results as &[Option<&str>],
        &errors as &[Option<String>],
        &attempt_outcomes as &[&str],
        &delays,
        worker_id
    )
    .fetch_all(pool)
    .await?;
    let done: std::collections::HashSet<(String, i32)> = done.into_iter().map(|d| (d.id, d.attempt)).collect();
    notify_changed(pool, done.iter().map(|(id, _)| id.clone()).collect());
    Ok(outcomes
        .iter()
        .map(|o| if done.contains(&(o.task_id.to_string(), o.attempt)) { Recorded::Written } else { Recorded::Fenced })
        .collect())
}

/// Stores a running attempt's progress (fenced like [`record_outcomes`]) and
/// notifies listeners.
pub async fn set_progress(
    pool: &PgPool,
    id: &str,
    worker_id: Uuid,
    attempt: i32,
    progress: &Progress,
) -> Result<Recorded, StoreError> {
    let r = sqlx::query!(
        "UPDATE tasks SET progress = $4 WHERE id = $1 AND status = 'processing' AND worker_id = $2 AND attempts = $3",
        id,
        worker_id,
        attempt,
        Json(progress) as _
    )
    .execute(pool)
    .await?;
    if r.rows_affected() == 1 {
        notify_changed(pool, vec![id.to_string()]);
        Ok(Recorded::Written)
    } else {
        Ok(Recorded::Fenced)
    }
}

/// A queued task that still has to be sent to Kafka.
#[derive(Debug)]
pub struct Unpublished {
    /// Task id.
    pub id: String,
    /// Handler name.
    pub name: String,
    /// JSON array text.
    pub args: Box<RawValue>,
    /// JSON object text.
    pub kwargs: Box<RawValue>,
    /// Queue name.
    pub queue: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Submission time.
    pub created_at: DateTime<Utc>,
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

/// An [`Unpublished`] row, with its status (the rescuer's rows may be
/// `failed` or `cancelled` instead).
struct UnpublishedRecord {
    status: TaskStatus,
    id: String,
    name: String,
    args: Json<Box<RawValue>>,
    kwargs: Json<Box<RawValue>>,
    queue: String,
    attempts: i32,
    created_at: DateTime<Utc>,
}

impl From<UnpublishedRecord> for Unpublished {
    fn from(r: UnpublishedRecord) -> Self {
        Unpublished {
            id: r.id,
            name: r.name,
            args: r.args.0,
            kwargs: r.kwargs.0,
            queue: r.queue,
            attempts: r.attempts,
            created_at: r.created_at,
        }
    }
}

/// Up to `limit` `queued` rows with no `published_at`, in submission order.
/// Rows submitted less than `grace` ago are left to the gateway that accepted
/// them (it is still waiting for the broker's ack); requeued rows are due at once.
pub async fn fetch_unpublished(pool: &PgPool, grace: Duration, limit: i64) -> Result<Vec<Unpublished>, StoreError> {
    let rows = unpublished_query!(
        "SELECT ",
        " FROM tasks
         WHERE status = 'queued' AND published_at IS NULL
           AND (attempts > 0 OR created_at < now() - make_interval(secs => $1))
         ORDER BY seq LIMIT $2",
        grace.as_secs_f64(),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Unpublished::from).collect())
}

/// A record the broker acknowledged: the task id and the attempt count the
/// record carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Task id.
    pub id: String,
    /// The row's attempt count when the record was produced.
    pub attempts: i32,
}

/// Marks queued rows as sent to Kafka. Only rows still `queued`, unpublished
/// and at the record's attempt count are marked: a row requeued since (a
/// retry, a rescue) waits for its own send's mark, so a late mark cannot hide
/// a send that failed. Rows another transaction holds are skipped, not waited
/// for: that is a claim (which stamps `published_at` itself) or a cancel, and
/// a row left unmarked only costs one duplicate record from the publisher.
/// Returns how many rows were marked.
pub async fn mark_published(pool: &PgPool, sent: &[Sent]) -> Result<u64, StoreError> {
    let (ids, attempts): (Vec<&str>, Vec<i32>) = sent.iter().map(|s| (s.id.as_str(), s.attempts)).unzip();
    let r = sqlx::query!(
        "UPDATE tasks SET published_at = now()
         WHERE id IN (SELECT t.id FROM UNNEST($1::text[], $2::int[]) AS u(id, attempts)
                      JOIN tasks t ON t.id = u.id AND t.attempts = u.attempts
                      WHERE t.status = 'queued' ORDER BY t.id FOR UPDATE OF t SKIP LOCKED)
           AND published_at IS NULL",
        &ids as &[&str],
        &attempts
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// A record Kafka refused for itself ([`crate::kafka::Delivery::Refused`]).
#[derive(Debug, Clone)]
pub struct Refused {
    /// Task id.
    pub id: String,
    /// The row's attempt count when the record was produced.
    pub attempts: i32,
    /// Why it can never be sent (`record_too_large`, `unpublishable`).
    pub error: TaskError,
}

/// Fails queued rows whose Kafka record can never be sent. Only rows still
/// `queued`, unpublished and at the record's attempt count change (a row
/// claimed, cancelled or requeued since is left alone); rows another
/// transaction holds are skipped, and the next send fails them. Returns the
/// ids failed.
pub async fn fail_unsendable(pool: &PgPool, refused: &[Refused]) -> Result<Vec<String>, StoreError> {
    if refused.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = refused.iter().map(|r| r.id.as_str()).collect();
    let attempts: Vec<i32> = refused.iter().map(|r| r.attempts).collect();
    let errors: Vec<String> =
        refused.iter().map(|r| serde_json::to_string(&r.error).expect("error serialises")).collect();
    let failed = sqlx::query_scalar!(
        "UPDATE tasks t SET status = 'failed', error = u.error::jsonb, finished_at = now()
         FROM (SELECT t.id, u.error FROM UNNEST($1::text[], $2::int[], $3::text[]) AS u(id, attempts, error)
               JOIN tasks t ON t.id = u.id AND t.attempts = u.attempts
               WHERE t.status = 'queued' AND t.published_at IS NULL
               ORDER BY t.id FOR UPDATE OF t SKIP LOCKED) AS u
         WHERE t.id = u.id
         RETURNING t.id",
        &ids as &[&str],
        &attempts,
        &errors
    )
    .fetch_all(pool)
    .await?;
    notify_changed(pool, failed.clone());
    Ok(failed)
}

/// What [`resend`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// The task was `queued` and marked published: now unpublished, so the
    /// publisher sends it again.
    Unpublished,
    /// The task is not `queued` any more (claimed through another record,
    /// finished), is unpublished already, or does not exist: unchanged.
    Unchanged,
}

/// Sends a record's task to the publisher again: clears `published_at` of
/// task `id` when it is still `queued` and marked published. What a worker
/// does with a record of a tenant it does not serve (the record went to the
/// topic of the tenant's old route); the publisher then sends it to the
/// route it reads now.
pub async fn resend(pool: &PgPool, id: &str) -> Result<Resent, StoreError> {
    let r = sqlx::query!(
        "UPDATE tasks SET published_at = NULL WHERE id = $1 AND status = 'queued' AND published_at IS NOT NULL",
        id
    )
    .execute(pool)
    .await?;
    Ok(if r.rows_affected() > 0 { Resent::Unpublished } else { Resent::Unchanged })
}

/// The leader's re-route: for each tenant whose route changed more than
/// `settle` ago and has not been re-routed since (the `dedicated_tenants`
/// row, which this stamps), clears `published_at` of its `queued` tasks, so
/// the publisher sends them again to the route every process reads by now;
/// records of those tasks on the old route's topic become duplicates, which
/// the claim absorbs. `settle` covers how stale a process's copy of the list
/// can be plus how long a record sent by that copy can take to be
/// acknowledged and marked. Returns how many tasks it cleared; each change
/// is acted on once.
pub async fn reroute_changed(pool: &PgPool, settle: Duration) -> Result<u64, StoreError> {
    let r = sqlx::query!(
        "WITH due AS (
             UPDATE dedicated_tenants SET rerouted_at = now()
             WHERE rerouted_at IS NULL AND changed_at < now() - make_interval(secs => $1)
             RETURNING tenant)
         UPDATE tasks SET published_at = NULL FROM due
         WHERE tasks.tenant = due.tenant AND tasks.status = 'queued' AND tasks.published_at IS NOT NULL",
        settle.as_secs_f64()
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Moves due `scheduled` tasks to `queued` (unpublished) and returns them for
/// publishing, oldest due first, at most `limit`.
pub async fn promote_due(pool: &PgPool, limit: i64) -> Result<Vec<Unpublished>, StoreError> {
    // The rows are picked once, in a materialised CTE: as `id IN (subquery)`
    // PostgreSQL may plan a semi join that re-runs the subquery's LIMIT for
    // each row (skipping the rows it has just locked) and promotes every due task.
    let rows = unpublished_query!(
        "WITH due AS MATERIALIZED (SELECT id AS due_id FROM tasks WHERE status = 'scheduled' AND run_at <= now()
                      ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE tasks SET status = 'queued', published_at = NULL
         FROM due WHERE id = due.due_id AND status = 'scheduled'
         RETURNING ",
        "",
        limit
    )
    .fetch_all(pool)
    .await?;
    let promoted: Vec<Unpublished> = rows.into_iter().map(Unpublished::from).collect();
    notify_changed(pool, promoted.iter().map(|u| u.id.clone()).collect());
    Ok(promoted)
}

/// What one rescuer pass did.
#[derive(Debug, Default)]
pub struct Rescued {
    /// Tasks put back to `queued`, to publish again.
    pub requeued: Vec<Unpublished>,
    /// Tasks out of attempts, now `failed` with kind `worker_lost` (or
    /// `cancelled` when cancellation had been requested).
    pub failed: i64,
}

/// Takes `processing` tasks away from workers that are dead (no heartbeat for
/// `dead_after`, database clock) or stopped: back to `queued` (unpublished) when
/// attempts remain, else `failed` with kind `worker_lost`; their attempt rows
/// close with outcome `worker_lost`.
pub async fn rescue(pool: &PgPool, dead_after: Duration) -> Result<Rescued, StoreError> {
    let rows = unpublished_query!(
        r#"WITH lost AS (
             SELECT t.id, t.worker_id, t.attempts, (t.attempts > t.max_retries) AS exhausted,
                    (t.cancel_requested_at IS NOT NULL) AS cancel
             FROM tasks t JOIN workers w ON w.id = t.worker_id
             WHERE t.status = 'processing'
               AND (w.stopped_at IS NOT NULL OR w.last_heartbeat_at < now() - make_interval(secs => $1))
             FOR UPDATE OF t SKIP LOCKED
         ), moved AS (
             UPDATE tasks t SET
                 status = CASE WHEN lost.cancel THEN 'cancelled' WHEN lost.exhausted THEN 'failed' ELSE 'queued' END,
                 published_at = NULL,
                 error = CASE WHEN lost.cancel THEN jsonb_build_object('kind', 'cancelled', 'message',
                                  'cancelled on request; its worker stopped before acknowledging')
                              WHEN lost.exhausted THEN jsonb_build_object('kind', 'worker_lost',
                     'message', 'worker ' || lost.worker_id || ' died during attempt ' || lost.attempts
                                || ' and no attempts are left') ELSE t.error END,
                 finished_at = CASE WHEN lost.cancel OR lost.exhausted THEN now() ELSE NULL END
             FROM lost
             WHERE t.id = lost.id AND t.status = 'processing' AND t.worker_id = lost.worker_id
               AND t.attempts = lost.attempts
             RETURNING t.id, t.status, lost.attempts, lost.worker_id, t.name, t.args, t.kwargs, t.queue, t.created_at
         ), closed AS (
             UPDATE task_attempts a SET finished_at = now(), outcome = 'worker_lost',
                 error = jsonb_build_object('kind', 'worker_lost', 'message', 'worker stopped heartbeating')
             FROM moved
             WHERE a.task_id = moved.id AND a.attempt = moved.attempts AND a.finished_at IS NULL
         )
         SELECT "#,
        " FROM moved",
        dead_after.as_secs_f64()
    )
    .fetch_all(pool)
    .await?;
    let mut rescued = Rescued::default();
    let mut moved = Vec::with_capacity(rows.len());
    for r in rows {
        moved.push(r.id.clone());
        if r.status == TaskStatus::Queued {
            rescued.requeued.push(r.into());
        } else {
            rescued.failed += 1;
        }
    }
    notify_changed(pool, moved);
    Ok(rescued)
}

/// Deletes up to `batch` terminal tasks (and their attempts) finished more than
/// `ttl` ago; returns how many.
pub async fn delete_expired(pool: &PgPool, ttl: Duration, batch: i64) -> Result<u64, StoreError> {
    let r = sqlx::query!(
        "DELETE FROM tasks WHERE id IN (
             SELECT id FROM tasks WHERE finished_at < now() - make_interval(secs => $1)
               AND status IN ('success', 'failed', 'cancelled')
             ORDER BY finished_at LIMIT $2)",
        ttl.as_secs_f64(),
        batch
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Reads the tasks of `ids` in one statement (the gateway's shared read of
/// the tasks its waiters watch); ids with no task are left out.
pub async fn get_many(pool: &PgPool, ids: &[String]) -> Result<Vec<TaskRow>, StoreError> {
    let rows = task_query!("SELECT ", " FROM tasks WHERE id = ANY($1)", ids).fetch_all(pool).await?;
    Ok(rows.into_iter().map(TaskRow::from).collect())
}
