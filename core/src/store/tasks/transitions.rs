//! The transitions of the state machine (the table in the parent module)
//! other than the `published_at` protocol's: claim, outcomes and progress,
//! cancel, manual retry, promote, rescue and expiry.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::value::RawValue;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{get, get_in, Backoff, TaskRecord, TaskRow, Unpublished, UnpublishedRecord};
use crate::model::{Progress, TaskError, TaskStatus};
use crate::names::TaskKey;
use crate::store::events::notify_changed;
use crate::store::StoreError;
use crate::telemetry::TraceContext;

/// What `POST /tasks/{id}/cancel` did.
#[derive(Debug)]
pub enum CancelResult {
    /// `held`, `waiting`, `queued` or `scheduled`: now `cancelled` (a
    /// limited `queued` task's slot goes to a held one in the same
    /// transaction).
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

/// Cancels a task: at once when it is `held`, `waiting`, `queued` or
/// `scheduled`, by request (`cancel_requested_at`, status unchanged) when it
/// is `processing` or in a status this release does not know (a newer
/// release's, which honours the request when it next moves the task).
pub async fn cancel(pool: &PgPool, key: &TaskKey) -> Result<CancelResult, StoreError> {
    Ok(cancel_releasing(pool, key).await?.0)
}

/// [`cancel`], with the workflow nodes that its fan-in released to `queued`
/// (children of a cancelled node that run anyway, `on_parent_failure: run`),
/// for the caller to publish right away; the publisher is the fallback.
pub async fn cancel_releasing(pool: &PgPool, key: &TaskKey) -> Result<(CancelResult, Vec<Unpublished>), StoreError> {
    let mut tx = pool.begin().await?;
    let row = task_query!(
        "UPDATE tasks SET
             status = CASE WHEN status IN ('held', 'waiting', 'queued', 'scheduled') THEN 'cancelled' ELSE status END,
             cancel_requested_at = coalesce(cancel_requested_at, now()),
             finished_at = CASE WHEN status IN ('held', 'waiting', 'queued', 'scheduled') THEN now() ELSE finished_at END,
             error = CASE WHEN status IN ('held', 'waiting', 'queued', 'scheduled')
                          THEN jsonb_build_object('kind', 'cancelled', 'message', 'cancelled on request')
                          ELSE error END
         WHERE id = $1 AND status NOT IN ('success', 'failed', 'cancelled')
         RETURNING ",
        "",
        key.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    let row = row.map(TaskRow::from);
    // A cancelled workflow node's children leave `waiting` with it.
    let ended: Vec<TaskKey> =
        row.iter().filter(|r| r.task.status == TaskStatus::Cancelled).map(|r| r.task.key.clone()).collect();
    // Lock order: task rows, then (fan-in) children, then buckets. A
    // cancelled limited task's slot goes to a held one in this transaction.
    let mut fanned = crate::store::workflows::fan_in(&mut tx, ended.clone()).await?;
    let freed: Vec<TaskKey> = ended.iter().chain(&fanned.held).cloned().collect();
    let limited = crate::store::limits::release_freed(&mut tx, &freed).await?;
    tx.commit().await?;
    fanned.changed.extend(limited.changed);
    fanned.released.extend(limited.queued);
    match row {
        Some(row) if row.task.status == TaskStatus::Cancelled => {
            notify_changed(
                pool,
                std::iter::once(row.task.key.clone()).chain(fanned.changed).map(TaskKey::into_string).collect(),
            );
            Ok((CancelResult::Cancelled(row), fanned.released))
        }
        Some(row) => Ok((CancelResult::Requested(row), Vec::new())),
        None => Ok((get(pool, key).await?.map_or(CancelResult::NotFound, CancelResult::Terminal), Vec::new())),
    }
}

/// What `POST /tasks/{id}/retry` did.
#[derive(Debug)]
pub enum RetryResult {
    /// Back to `queued` (unpublished) for one more attempt; or, for a task
    /// that takes limits and finds no room, `held` until a slot frees.
    Requeued(TaskRow),
    /// In a status that cannot be retried, or failed because its record can
    /// never be sent (an error kind in [`crate::kafka::UNSENDABLE_KINDS`]): unchanged.
    NotRetryable(TaskRow),
    /// Its unique key is held by another task now ([`crate::store::unique`]):
    /// unchanged, since requeueing it would make two tasks hold the key.
    UniqueHeld,
    /// No such task.
    NotFound,
}

/// Puts a `failed` or `cancelled` task back to `queued` for one more attempt
/// (its retry budget is raised to allow it), unless another task holds its
/// unique key ([`RetryResult::UniqueHeld`]).
pub async fn retry(pool: &PgPool, key: &TaskKey) -> Result<RetryResult, StoreError> {
    // A transaction: a limited task's release locks its buckets until the commit.
    let mut tx = pool.begin().await?;
    let result = retry_in(&mut tx, key).await?;
    tx.commit().await?;
    if matches!(result, RetryResult::Requeued(_)) {
        notify_changed(pool, vec![key.to_string()]);
    }
    Ok(result)
}

/// [`retry`] on `conn` (a workflow's transaction, which re-opens the
/// node's descendants with it), without notifying.
pub(crate) async fn retry_in(conn: &mut PgConnection, key: &TaskKey) -> Result<RetryResult, StoreError> {
    let unsendable: Vec<String> = crate::kafka::UNSENDABLE_KINDS.iter().map(|k| k.to_string()).collect();
    // A limited task is gated like a new one: `held` in this statement
    // (never `queued` ungated), then released as far as its buckets have
    // room; one whose limits were all deleted meanwhile is plain again.
    let row = match task_query!(
        "WITH moved AS (
           UPDATE tasks SET status = CASE WHEN limited AND EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = tasks.id)
                                          THEN 'held' ELSE 'queued' END,
               published_at = NULL, max_retries = GREATEST(max_retries, attempts),
               result = NULL, error = NULL, finished_at = NULL, cancel_requested_at = NULL, run_at = NULL,
               progress = NULL
           WHERE id = $1 AND status IN ('failed', 'cancelled')
             AND NOT (status = 'failed' AND coalesce(error->>'kind', '') = ANY($2))
           RETURNING *
         ), members AS (
           UPDATE task_limits m SET held = true, slot = false FROM moved WHERE moved.limited AND m.task_id = moved.id
         )
         SELECT ",
        " FROM moved",
        key.as_str(),
        &unsendable
    )
    .fetch_optional(&mut *conn)
    .await
    {
        Err(e) if crate::store::unique::is_violation(&e) => return Ok(RetryResult::UniqueHeld),
        row => row?,
    };
    match row.map(TaskRow::from) {
        // A limited task is released in this transaction as far as its
        // buckets have room; the caller publishes it if it went `queued`.
        Some(row) if row.task.status.as_str() == crate::store::limits::HELD => {
            crate::store::limits::release_freed(conn, std::slice::from_ref(key)).await?;
            Ok(get_in(conn, key).await?.map_or(RetryResult::NotFound, RetryResult::Requeued))
        }
        Some(row) => Ok(RetryResult::Requeued(row)),
        None => Ok(get_in(conn, key).await?.map_or(RetryResult::NotFound, RetryResult::NotRetryable)),
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
    /// The task takes limits (`store::limits`): its outcome frees a slot,
    /// so it is recorded with [`AttemptOutcomeRecord::limited`] set.
    pub limited: bool,
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
/// the attempt and opens its `task_attempts` row, in one statement. The
/// start time is `clock_timestamp()` read after the rows' locks, not the
/// transaction's `now()`: an attempt starts when it is claimed, so overlaps
/// measured from the attempt rows are true (a limit's exactness is measured
/// so). Returns
/// one [`ClaimResult`] per id, in order. An id listed twice gets its claim
/// once (the second is [`ClaimResult::NotQueued`]).
pub async fn claim(pool: &PgPool, keys: &[TaskKey], worker_id: Uuid) -> Result<Vec<ClaimResult>, StoreError> {
    let ids: Vec<&str> = keys.iter().map(TaskKey::as_str).collect();
    let rows = sqlx::query!(
        r#"WITH locked AS (
             SELECT t.id FROM UNNEST($1::text[]) AS u(id) JOIN tasks t ON t.id = u.id
             WHERE t.status = 'queued' ORDER BY t.id FOR UPDATE OF t
         ), claimed AS (
             UPDATE tasks t SET status = 'processing', attempts = attempts + 1, worker_id = $2,
                    started_at = clock_timestamp(), error = NULL, progress = NULL,
                    published_at = coalesce(published_at, now())
             FROM locked l WHERE t.id = l.id AND t.status = 'queued'
             RETURNING t.id, name, args, kwargs, attempts, timeout_seconds,
                       max_retries, retry_backoff_base, retry_backoff_cap, traceparent, tracestate, limited,
                       t.started_at
         ), attempt AS (
             INSERT INTO task_attempts (task_id, attempt, worker_id, started_at)
             SELECT id, attempts, $2, started_at FROM claimed
         )
         SELECT id AS "id!", name AS "name!", args AS "args!: Json<Box<RawValue>>",
                kwargs AS "kwargs!: Json<Box<RawValue>>", attempts AS "attempts!",
                timeout_seconds AS "timeout_seconds!", max_retries AS "max_retries!",
                retry_backoff_base, retry_backoff_cap, traceparent, tracestate, limited AS "limited!"
         FROM claimed"#,
        &ids as &[&str],
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
            limited: r.limited,
        };
        by_id.insert(r.id, claimed);
    }
    notify_changed(pool, by_id.keys().cloned().collect());
    Ok(keys.iter().map(|key| by_id.remove(key.as_str()).map_or(ClaimResult::NotQueued, ClaimResult::Claimed)).collect())
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
    pub task_id: &'a TaskKey,
    /// The attempt number the worker claimed.
    pub attempt: i32,
    /// How it ended.
    pub outcome: &'a Outcome,
    /// The task takes limits ([`Claimed::limited`]): its outcome is written
    /// in a transaction that also releases what its slot makes room for.
    pub limited: bool,
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
/// order, whether it was written. Outcomes of limited tasks also release
/// what their slots make room for ([`record_outcomes_releasing`]); the
/// publisher sends those here, since this drops the list.
pub async fn record_outcomes(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<Vec<Recorded>, StoreError> {
    Ok(record_outcomes_releasing(pool, worker_id, outcomes).await?.0)
}

/// [`record_outcomes`], with the held tasks that the freed slots released
/// (`queued` unpublished), for the caller to publish right after. A batch
/// with no limited task (no [`AttemptOutcomeRecord::limited`]) is the one
/// outcome statement, autocommitted, as ever; one with a limited task is
/// [`crate::store::limits::record_outcomes`]: one autocommitted statement
/// that also frees the slots and finds the buckets holding a task, then,
/// only when one does, a release in a transaction right after (the
/// leader's pass hands the slot on if the worker dies in between).
pub async fn record_outcomes_releasing(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<(Vec<Recorded>, Vec<Unpublished>), StoreError> {
    if outcomes.iter().any(|o| o.limited) {
        return crate::store::limits::record_outcomes(pool, worker_id, outcomes).await;
    }
    let recorded = record_outcomes_in(&mut *pool.acquire().await?, worker_id, outcomes).await?;
    notify_changed(
        pool,
        outcomes
            .iter()
            .zip(&recorded)
            .filter(|(_, r)| **r == Recorded::Written)
            .map(|(o, _)| o.task_id.to_string())
            .collect(),
    );
    Ok((recorded, Vec::new()))
}

/// [`record_outcomes`] on `conn` (a workflow's transaction, which adds the
/// fan-in), without notifying.
pub(crate) async fn record_outcomes_in(
    conn: &mut PgConnection,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<Vec<Recorded>, StoreError> {
    let c = OutcomeColumns::of(outcomes);
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
        &c.ids as &[&str],
        &c.attempts,
        &c.statuses as &[&str],
        &c.results as &[Option<&str>],
        &c.errors as &[Option<String>],
        &c.attempt_outcomes as &[&str],
        &c.delays,
        worker_id
    )
    .fetch_all(conn)
    .await?;
    Ok(c.recorded(outcomes, done.into_iter().map(|d| (d.id, d.attempt))))
}

/// [`record_outcomes_in`] for a batch with outcomes of limited tasks, in one
/// statement: the outcomes, then (migration 0023's `yadtq_limits_freed`,
/// called from the statement after it locked the task rows) the freed
/// slots' buckets that hold a task locked in id order, and the locked
/// buckets that still hold a task under the locks. A task that succeeded
/// loses its memberships (a delete: no new row version, no index entry);
/// the others keep theirs, `slot` hint set (the next count clears it:
/// migration 0023), since a failed or cancelled task may be retried and is
/// gated again by them.
/// Returns per outcome whether it was written, and those buckets (empty
/// while no limit is reached), for [`crate::store::limits::release`].
pub(in crate::store) async fn record_outcomes_freeing(
    conn: &mut PgConnection,
    worker_id: Uuid,
    outcomes: &[AttemptOutcomeRecord<'_>],
) -> Result<(Vec<Recorded>, Vec<i64>), StoreError> {
    let c = OutcomeColumns::of(outcomes);
    let rows = sqlx::query!(
        r#"WITH input AS (
             SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
                                  $9::bool[])
                 AS i(id, attempt, status, result, error, attempt_outcome, delay, limited)
         ), locked AS (
             SELECT t.id FROM input i JOIN tasks t ON t.id = i.id ORDER BY t.id FOR UPDATE OF t
         ), done AS (
             UPDATE tasks t SET status = i.status, result = i.result::json, error = i.error::jsonb,
                 finished_at = CASE WHEN i.status = 'scheduled' THEN NULL ELSE now() END,
                 run_at = CASE WHEN i.status = 'scheduled' THEN now() + make_interval(secs => i.delay) ELSE t.run_at END,
                 published_at = CASE WHEN i.status = 'scheduled' THEN NULL ELSE t.published_at END
             FROM input i JOIN locked l ON l.id = i.id
             WHERE t.id = i.id AND t.status = 'processing' AND t.worker_id = $8 AND t.attempts = i.attempt
             RETURNING t.id, i.attempt, i.attempt_outcome, i.error, i.limited, i.status
         ), closed AS (
             UPDATE task_attempts a SET finished_at = now(), outcome = d.attempt_outcome, error = d.error::jsonb
             FROM done d WHERE a.task_id = d.id AND a.attempt = d.attempt AND a.worker_id = $8
         ), freed AS MATERIALIZED (
             SELECT yadtq_limits_freed(ARRAY(SELECT id FROM done WHERE limited ORDER BY id)) AS held
         ), gone AS (
             -- Not read by the main query, so run after it (after `freed`
             -- read these memberships).
             DELETE FROM task_limits m USING done d WHERE d.limited AND d.status = 'success' AND m.task_id = d.id
         )
         SELECT d.id AS "id?", d.attempt AS "attempt?", f.held AS "held!" FROM freed f LEFT JOIN done d ON true"#,
        &c.ids as &[&str],
        &c.attempts,
        &c.statuses as &[&str],
        &c.results as &[Option<&str>],
        &c.errors as &[Option<String>],
        &c.attempt_outcomes as &[&str],
        &c.delays,
        worker_id,
        &outcomes.iter().map(|o| o.limited).collect::<Vec<bool>>()
    )
    .fetch_all(conn)
    .await?;
    let held = rows.first().map(|r| r.held.clone()).unwrap_or_default();
    let done = rows.into_iter().filter_map(|r| Some((r.id?, r.attempt?)));
    Ok((c.recorded(outcomes, done), held))
}

/// An outcome batch as the outcome statements' array parameters.
struct OutcomeColumns<'a> {
    ids: Vec<&'a str>,
    attempts: Vec<i32>,
    statuses: Vec<&'static str>,
    attempt_outcomes: Vec<&'static str>,
    results: Vec<Option<&'a str>>,
    errors: Vec<Option<String>>,
    delays: Vec<f64>,
}

impl<'a> OutcomeColumns<'a> {
    fn of(outcomes: &'a [AttemptOutcomeRecord<'a>]) -> Self {
        let as_text = |e: &TaskError| serde_json::to_string(e).expect("error serialises");
        let cancelled = as_text(&TaskError::new("cancelled", "cancelled on request"));
        let n = outcomes.len();
        let (mut ids, mut attempts, mut statuses, mut attempt_outcomes) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut results, mut errors, mut delays) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
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
            ids.push(o.task_id.as_str());
            attempts.push(o.attempt);
            statuses.push(status.as_str());
            attempt_outcomes.push(attempt_outcome.as_str());
            results.push(result);
            errors.push(error);
            delays.push(delay);
        }
        OutcomeColumns { ids, attempts, statuses, attempt_outcomes, results, errors, delays }
    }

    /// Per outcome in order: written when `done` has its (task, attempt).
    fn recorded(
        &self,
        outcomes: &[AttemptOutcomeRecord<'_>],
        done: impl Iterator<Item = (String, i32)>,
    ) -> Vec<Recorded> {
        let done: std::collections::HashSet<(String, i32)> = done.collect();
        outcomes
            .iter()
            .map(
                |o| {
                    if done.contains(&(o.task_id.to_string(), o.attempt)) {
                        Recorded::Written
                    } else {
                        Recorded::Fenced
                    }
                },
            )
            .collect()
    }
}

/// Stores a running attempt's progress (fenced like [`record_outcomes`]) and
/// notifies listeners.
pub async fn set_progress(
    pool: &PgPool,
    key: &TaskKey,
    worker_id: Uuid,
    attempt: i32,
    progress: &Progress,
) -> Result<Recorded, StoreError> {
    let r = sqlx::query!(
        "UPDATE tasks SET progress = $4 WHERE id = $1 AND status = 'processing' AND worker_id = $2 AND attempts = $3",
        key.as_str(),
        worker_id,
        attempt,
        Json(progress) as _
    )
    .execute(pool)
    .await?;
    if r.rows_affected() == 1 {
        notify_changed(pool, vec![key.to_string()]);
        Ok(Recorded::Written)
    } else {
        Ok(Recorded::Fenced)
    }
}

/// Moves due `scheduled` tasks to `queued` (unpublished) and returns them for
/// publishing, oldest due first, at most `limit`. A limited task (a retry
/// of one, or one submitted with a countdown) is gated again, since limits
/// apply to every attempt: it becomes `held` in the same statement (never
/// `queued` ungated), and is then released as far as its buckets have room
/// ([`crate::store::limits::release`]); the released ones are returned
/// with the others, the rest wait `held` for a freed slot or the leader's
/// release pass.
pub(crate) async fn promote_due(pool: &PgPool, limit: i64) -> Result<Vec<Unpublished>, StoreError> {
    // The rows are picked once, in a materialised CTE: as `id IN (subquery)`
    // PostgreSQL may plan a semi join that re-runs the subquery's LIMIT for
    // each row (skipping the rows it has just locked) and promotes every due task.
    let rows = unpublished_query!(
        "WITH due AS MATERIALIZED (SELECT id AS due_id FROM tasks WHERE status = 'scheduled' AND run_at <= now()
                      ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED),
         moved AS (
             UPDATE tasks SET status = CASE WHEN limited AND EXISTS (SELECT 1 FROM task_limits m WHERE m.task_id = tasks.id)
                                            THEN 'held' ELSE 'queued' END,
                              published_at = NULL
             FROM due WHERE id = due.due_id AND status = 'scheduled'
             RETURNING id, status, name, args, kwargs, queue, attempts, created_at, limited
         ), members AS (
             UPDATE task_limits m SET held = true, slot = false FROM moved WHERE moved.limited AND m.task_id = moved.id
         )
         SELECT ",
        " FROM moved",
        limit
    )
    .fetch_all(pool)
    .await?;
    let mut changed: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let (mut promoted, mut held) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in rows {
        if r.status == TaskStatus::Queued {
            promoted.push(Unpublished::from(r));
        } else {
            held.push(TaskKey::from_stored(r.id));
        }
    }
    if !held.is_empty() {
        let mut tx = pool.begin().await?;
        let released = crate::store::limits::release_freed(&mut tx, &held).await?;
        tx.commit().await?;
        changed.extend(released.changed.into_iter().map(TaskKey::into_string));
        promoted.extend(released.queued);
    }
    notify_changed(pool, changed);
    Ok(promoted)
}

/// What one rescuer pass did.
#[derive(Debug, Default)]
pub(crate) struct Rescued {
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
pub(crate) async fn rescue(pool: &PgPool, dead_after: Duration) -> Result<Rescued, StoreError> {
    let mut tx = pool.begin().await?;
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
    .fetch_all(&mut *tx)
    .await?;
    let mut rescued = Rescued::default();
    let mut moved = Vec::with_capacity(rows.len());
    let mut ended = Vec::new();
    for r in rows {
        moved.push(r.id.clone());
        if r.status == TaskStatus::Queued {
            rescued.requeued.push(r.into());
        } else {
            ended.push(TaskKey::from_stored(r.id));
            rescued.failed += 1;
        }
    }
    let fanned = crate::store::workflows::fan_in(&mut tx, ended.clone()).await?;
    // A requeued limited task keeps its slot; an ended one's goes to a held
    // task in this transaction (lock order: tasks, children, buckets).
    let freed: Vec<TaskKey> = ended.iter().chain(&fanned.held).cloned().collect();
    let limited = crate::store::limits::release_freed(&mut tx, &freed).await?;
    tx.commit().await?;
    moved.extend(fanned.changed.into_iter().chain(limited.changed).map(TaskKey::into_string));
    rescued.requeued.extend(fanned.released);
    rescued.requeued.extend(limited.queued);
    notify_changed(pool, moved);
    Ok(rescued)
}

/// Deletes up to `batch` terminal tasks (and their attempts) finished more than
/// `ttl` ago; returns how many.
pub(crate) async fn delete_expired(pool: &PgPool, ttl: Duration, batch: i64) -> Result<u64, StoreError> {
    let r = sqlx::query!(
        "DELETE FROM tasks WHERE id IN (
             SELECT id FROM tasks WHERE finished_at < now() - make_interval(secs => $1)
               AND status IN ('success', 'failed', 'cancelled')
               AND NOT EXISTS (SELECT 1 FROM workflow_nodes n WHERE n.task_id = tasks.id)
             ORDER BY finished_at LIMIT $2)",
        ttl.as_secs_f64(),
        batch
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
