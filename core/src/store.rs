//! The PostgreSQL data layer: one function per statement, named for what it
//! does. Business code never writes SQL inline. Every state transition is a
//! conditional UPDATE naming the expected status (and, for a worker's writes,
//! its worker id and attempt number), so a stale writer changes nothing.
//! Statements that change many task rows lock them in id order (or skip locked
//! rows), so two concurrent batches can never wait on each other in a cycle.
//! They join the id list (`UNNEST`) to the table rather than filter with
//! `id = ANY($1)`: a filter is tested against the whole list for every row a
//! plan scans (a partial index, a small table's sequential scan), a join is not.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use uuid::Uuid;

use crate::config::CommonConfig;
use crate::model::{Task, TaskError, TaskStatus, Worker, WorkerState};

/// Embedded migrations from `migrations/`. Running them takes an advisory lock,
/// so several processes starting at once are safe.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Channel of task events (`LISTEN yadtq_task_events`). Each payload lists the
/// ids of tasks whose status or progress changed, comma separated (task ids
/// never contain commas); listeners re-read the rows.
pub const TASK_EVENTS_CHANNEL: &str = "yadtq_task_events";
/// Longest event payload sent (PostgreSQL refuses payloads of 8000 bytes and more).
const EVENT_PAYLOAD_MAX: usize = 7900;

/// Splits `ids` into comma-separated payloads of at most `max` bytes each.
fn event_payloads<S: AsRef<str>>(ids: &[S], max: usize) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        let id = id.as_ref();
        if !current.is_empty() && current.len() + 1 + id.len() > max {
            payloads.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(id);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// Tells every listening gateway that these tasks changed, in the background,
/// after the change has committed. The NOTIFY runs in a transaction of its own
/// that writes nothing: PostgreSQL holds a cluster-wide lock from a notifying
/// transaction's commit until it ends, so a NOTIFY inside a write transaction
/// (the trigger this replaces) serialised every writer's commit flush. Best
/// effort: a lost event only delays a waiter until its periodic re-read.
pub fn notify_changed(pool: &PgPool, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        let payloads = event_payloads(&ids, EVENT_PAYLOAD_MAX);
        let sent = sqlx::query("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p")
            .bind(TASK_EVENTS_CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, tasks = ids.len(), "task events not sent");
        }
    });
}

/// Opens the pool described by `cfg` and applies pending migrations.
///
/// Errors when PostgreSQL cannot be reached within the acquire timeout or a
/// migration fails.
pub async fn connect(cfg: &CommonConfig) -> anyhow::Result<PgPool> {
    let opts: PgConnectOptions = cfg.database_url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(cfg.db_pool_size)
        .acquire_timeout(cfg.db_acquire_timeout())
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Opens one connection outside any pool (heartbeats and the leader lock use
/// their own connection, so a busy or recycling pool cannot delay or drop them).
pub async fn connect_dedicated(database_url: &str) -> Result<PgConnection, sqlx::Error> {
    use sqlx::Connection;
    PgConnection::connect(database_url).await
}

/// The columns of a task row, as a literal so statements that use it are
/// built at compile time (`concat!`), not formatted on every request.
macro_rules! task_columns {
    () => {
        "id, seq, name, args::text AS args, kwargs::text AS kwargs, queue, status, \
         result::text AS result, error, attempts, max_retries, timeout_seconds, run_at, progress, \
         cancel_requested_at, worker_id, created_at, started_at, finished_at, request_hash"
    };
}

/// `SELECT` of one task by id.
const SELECT_TASK: &str = concat!("SELECT ", task_columns!(), " FROM tasks WHERE id = $1");

fn raw(text: String) -> Result<Box<RawValue>, sqlx::Error> {
    RawValue::from_string(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
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

fn task_from_row(row: &PgRow) -> Result<TaskRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let error: Option<serde_json::Value> = row.try_get("error")?;
    Ok(TaskRow {
        task: Task {
            id: row.try_get("id")?,
            task: row.try_get("name")?,
            args: raw(row.try_get("args")?)?,
            kwargs: raw(row.try_get("kwargs")?)?,
            queue: row.try_get("queue")?,
            status: TaskStatus::parse(&status)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown status {status}").into()))?,
            result: row.try_get::<Option<String>, _>("result")?.map(raw).transpose()?,
            error: error.and_then(|e| serde_json::from_value(e).ok()),
            attempts: row.try_get("attempts")?,
            max_retries: row.try_get("max_retries")?,
            timeout: row.try_get("timeout_seconds")?,
            run_at: row.try_get("run_at")?,
            progress: row
                .try_get::<Option<serde_json::Value>, _>("progress")?
                .and_then(|p| serde_json::from_value(p).ok()),
            cancel_requested_at: row.try_get("cancel_requested_at")?,
            worker_id: row.try_get("worker_id")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            finished_at: row.try_get("finished_at")?,
        },
        request_hash: row.try_get("request_hash")?,
        seq: row.try_get("seq")?,
    })
}

/// A task to insert, already validated by the gateway.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Task id (server UUID or client-chosen).
    pub id: String,
    /// Handler name.
    pub name: String,
    /// JSON array text, kept as sent.
    pub args: String,
    /// JSON object text, kept as sent.
    pub kwargs: String,
    /// Queue name.
    pub queue: String,
    /// Retries after the first attempt.
    pub max_retries: i32,
    /// Per-attempt timeout in seconds.
    pub timeout_seconds: f64,
    /// Not before this time (countdown / eta): the task starts `scheduled`.
    pub run_at: Option<DateTime<Utc>>,
    /// Retry backoff base and cap in seconds (None: the worker's defaults).
    pub retry_backoff: (Option<f64>, Option<f64>),
    /// Hash of the request, compared when the id is submitted again.
    pub request_hash: String,
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
}

/// Inserts a batch in one transaction (one `UNNEST` statement), all or
/// nothing. An id that already exists with the same request hash is returned as
/// [`Inserted::Existing`] (idempotent submission). `Ok(Err(id))` when an id
/// exists with a different request: nothing is inserted.
pub async fn insert_tasks(pool: &PgPool, tasks: &[NewTask]) -> Result<Result<Vec<Inserted>, String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let out = insert_in(&mut tx, tasks).await?;
    if let Some(id) = out.iter().find_map(|i| match i {
        Inserted::Conflict(id) => Some(id.clone()),
        _ => None,
    }) {
        return Ok(Err(id)); // dropping the transaction rolls the batch back
    }
    tx.commit().await?;
    Ok(Ok(out))
}

/// Inserts tasks that are independent of each other (concurrent submissions
/// gathered by the gateway) with one statement and one commit; each gets its
/// own result, conflicts included.
pub async fn insert_each(pool: &PgPool, tasks: &[NewTask]) -> Result<Vec<Inserted>, sqlx::Error> {
    insert_in(&mut *pool.acquire().await?, tasks).await
}

/// Rows are inserted in id order, as every other batch statement locks them:
/// two inserts sharing ids in different orders would each wait for the other's
/// uncommitted row (a deadlock PostgreSQL breaks after a second by failing one).
async fn insert_in(conn: &mut PgConnection, tasks: &[NewTask]) -> Result<Vec<Inserted>, sqlx::Error> {
    let col = |f: fn(&NewTask) -> String| tasks.iter().map(f).collect::<Vec<String>>();
    let sql = concat!(
        "INSERT INTO tasks (id, name, args, kwargs, queue, status, max_retries, timeout_seconds, run_at,
                            retry_backoff_base, retry_backoff_cap, request_hash)
         SELECT id, name, args::json, kwargs::json, queue,
                CASE WHEN run_at IS NULL THEN 'queued' ELSE 'scheduled' END,
                max_retries, timeout_seconds, run_at, base, cap, hash
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::float8[],
                     $8::timestamptz[], $9::float8[], $10::float8[], $11::text[])
              AS t(id, name, args, kwargs, queue, max_retries, timeout_seconds, run_at, base, cap, hash)
         ORDER BY id
         ON CONFLICT (id) DO NOTHING RETURNING ",
        task_columns!(),
        ""
    );
    let rows = sqlx::query(sql)
        .bind(col(|t| t.id.clone()))
        .bind(col(|t| t.name.clone()))
        .bind(col(|t| t.args.clone()))
        .bind(col(|t| t.kwargs.clone()))
        .bind(col(|t| t.queue.clone()))
        .bind(tasks.iter().map(|t| t.max_retries).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.timeout_seconds).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.run_at).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.retry_backoff.0).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.retry_backoff.1).collect::<Vec<_>>())
        .bind(col(|t| t.request_hash.clone()))
        .fetch_all(&mut *conn)
        .await?;
    let mut created: std::collections::HashMap<String, TaskRow> =
        rows.iter().map(|r| task_from_row(r).map(|t| (t.task.id.clone(), t))).collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Some(row) = created.remove(&t.id) {
            out.push(Inserted::Created(row));
            continue;
        }
        let row = sqlx::query(SELECT_TASK).bind(&t.id).fetch_optional(&mut *conn).await?;
        match row.as_ref().map(task_from_row).transpose()? {
            Some(existing) if existing.request_hash == t.request_hash => out.push(Inserted::Existing(existing)),
            // Same id twice with different bodies, or a different earlier task.
            _ => out.push(Inserted::Conflict(t.id.clone())),
        }
    }
    Ok(out)
}

/// Reads one task, `None` when no task has this id.
pub async fn get_task(pool: &PgPool, id: &str) -> Result<Option<TaskRow>, sqlx::Error> {
    let row = sqlx::query(SELECT_TASK).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(task_from_row).transpose()
}

/// Marks queued rows as sent to Kafka: each `(id, attempts)` is a record the
/// broker acknowledged, carrying the row's attempt count at the time. Only rows
/// still `queued`, unpublished and at that attempt count are marked: a row
/// requeued since (a retry, a rescue) waits for its own send's mark, so a late
/// mark cannot hide a send that failed. Rows another transaction holds are
/// skipped, not waited for: that is a claim (which stamps `published_at`
/// itself) or a cancel, and a row left unmarked only costs one duplicate
/// record from the publisher.
pub async fn mark_published(pool: &PgPool, sent: &[(String, i32)]) -> Result<u64, sqlx::Error> {
    let (ids, attempts): (Vec<&str>, Vec<i32>) = sent.iter().map(|(id, a)| (id.as_str(), *a)).unzip();
    let r = sqlx::query(
        "UPDATE tasks SET published_at = now()
         WHERE id IN (SELECT t.id FROM UNNEST($1::text[], $2::int[]) AS u(id, attempts)
                      JOIN tasks t ON t.id = u.id AND t.attempts = u.attempts
                      WHERE t.status = 'queued' ORDER BY t.id FOR UPDATE OF t SKIP LOCKED)
           AND published_at IS NULL",
    )
    .bind(&ids)
    .bind(&attempts)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Fails queued rows whose Kafka record can never be sent: each `(id,
/// attempts, error)` is a record refused for itself
/// ([`crate::kafka::Delivery::Refused`]), carrying the row's attempt count at
/// the time. Only rows still `queued`, unpublished and at that attempt count
/// change (a row claimed, cancelled or requeued since is left alone); rows
/// another transaction holds are skipped, and the next send fails them.
/// Returns the ids failed.
pub async fn fail_unsendable(pool: &PgPool, refused: &[(String, i32, TaskError)]) -> Result<Vec<String>, sqlx::Error> {
    if refused.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = refused.iter().map(|(id, _, _)| id.as_str()).collect();
    let attempts: Vec<i32> = refused.iter().map(|(_, a, _)| *a).collect();
    let errors: Vec<sqlx::types::Json<&TaskError>> = refused.iter().map(|(_, _, e)| sqlx::types::Json(e)).collect();
    let failed: Vec<String> = sqlx::query_scalar(
        "UPDATE tasks t SET status = 'failed', error = u.error, finished_at = now()
         FROM (SELECT t.id, u.error FROM UNNEST($1::text[], $2::int[], $3::jsonb[]) AS u(id, attempts, error)
               JOIN tasks t ON t.id = u.id AND t.attempts = u.attempts
               WHERE t.status = 'queued' AND t.published_at IS NULL
               ORDER BY t.id FOR UPDATE OF t SKIP LOCKED) AS u
         WHERE t.id = u.id
         RETURNING t.id",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&errors)
    .fetch_all(pool)
    .await?;
    notify_changed(pool, failed.clone());
    Ok(failed)
}

/// Moves `queued` tasks among `ids` to `processing` for `worker_id`, counts
/// the attempt and opens its `task_attempts` row, in one statement. Returns one
/// entry per id, in order: `None` when that task is not `queued` (already
/// claimed, finished, or unknown): the caller skips its record.
pub async fn claim_tasks(pool: &PgPool, ids: &[String], worker_id: Uuid) -> Result<Vec<Option<Claimed>>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH locked AS (
             SELECT t.id FROM UNNEST($1::text[]) AS u(id) JOIN tasks t ON t.id = u.id
             WHERE t.status = 'queued' ORDER BY t.id FOR UPDATE OF t
         ), claimed AS (
             UPDATE tasks t SET status = 'processing', attempts = attempts + 1, worker_id = $2,
                    started_at = now(), error = NULL, progress = NULL,
                    published_at = coalesce(published_at, now())
             FROM locked l WHERE t.id = l.id AND t.status = 'queued'
             RETURNING t.id, name, args::text AS args, kwargs::text AS kwargs, attempts, timeout_seconds,
                       max_retries, retry_backoff_base, retry_backoff_cap
         ), attempt AS (
             INSERT INTO task_attempts (task_id, attempt, worker_id)
             SELECT id, attempts, $2 FROM claimed
         )
         SELECT * FROM claimed",
    )
    .bind(ids)
    .bind(worker_id)
    .fetch_all(pool)
    .await?;
    let mut by_id = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get("id")?;
        by_id.insert(
            id,
            Claimed {
                name: row.try_get("name")?,
                args: raw(row.try_get("args")?)?,
                kwargs: raw(row.try_get("kwargs")?)?,
                attempt: row.try_get("attempts")?,
                timeout: crate::config::secs(row.try_get("timeout_seconds")?),
                max_retries: row.try_get("max_retries")?,
                retry_backoff: (row.try_get("retry_backoff_base")?, row.try_get("retry_backoff_cap")?),
            },
        );
    }
    notify_changed(pool, by_id.keys().cloned().collect());
    // An id listed twice gets its claim once.
    Ok(ids.iter().map(|id| by_id.remove(id)).collect())
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
    /// Retry backoff base and cap, seconds, when the task sets them.
    pub retry_backoff: (Option<f64>, Option<f64>),
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
    Retry(TaskError, Duration),
    /// The attempt was aborted on a cancel request: task `cancelled`.
    Cancelled,
}

/// One outcome to record: task id, attempt number, outcome.
pub type OutcomeRecord<'a> = (&'a str, i32, &'a Outcome);

/// Records outcomes of attempts by `worker_id` in one statement, closing their
/// attempt rows. Fenced per task: an outcome changes nothing unless its task is
/// still `processing` under this worker and attempt. Returns, per input in
/// order, whether it was recorded.
pub async fn record_outcomes(
    pool: &PgPool,
    worker_id: Uuid,
    outcomes: &[OutcomeRecord<'_>],
) -> Result<Vec<bool>, sqlx::Error> {
    let as_json = |e: &TaskError| serde_json::to_value(e).expect("error serialises");
    let cancelled = TaskError::new("cancelled", "cancelled on request");
    let n = outcomes.len();
    let (mut ids, mut attempts, mut statuses, mut attempt_outcomes) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut results, mut errors, mut delays) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for (id, attempt, outcome) in outcomes {
        let (status, attempt_outcome, result, error, delay): (
            &str,
            &str,
            Option<&str>,
            Option<serde_json::Value>,
            f64,
        ) = match outcome {
            Outcome::Success(json) => ("success", "success", Some(json.as_str()), None, 0.0),
            Outcome::Failed(e) => ("failed", "failed", None, Some(as_json(e)), 0.0),
            Outcome::Retry(e, d) => ("scheduled", "failed", None, Some(as_json(e)), d.as_secs_f64()),
            Outcome::Cancelled => ("cancelled", "cancelled", None, Some(as_json(&cancelled)), 0.0),
        };
        ids.push(*id);
        attempts.push(*attempt);
        statuses.push(status);
        attempt_outcomes.push(attempt_outcome);
        results.push(result);
        errors.push(error.map(|e| e.to_string()));
        delays.push(delay);
    }
    let done: Vec<(String, i32)> = sqlx::query_as(
        "WITH input AS (
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
         SELECT id, attempt FROM done",
    )
    .bind(&ids)
    .bind(&attempts)
    .bind(&statuses)
    .bind(&results)
    .bind(&errors)
    .bind(&attempt_outcomes)
    .bind(&delays)
    .bind(worker_id)
    .fetch_all(pool)
    .await?;
    notify_changed(pool, done.iter().map(|(id, _)| id.clone()).collect());
    let done: std::collections::HashSet<(String, i32)> = done.into_iter().collect();
    Ok(outcomes.iter().map(|(id, attempt, _)| done.contains(&(id.to_string(), *attempt))).collect())
}

/// Stores a running attempt's progress (fenced like [`record_outcomes`]) and
/// notifies listeners. Returns whether the task was still ours.
pub async fn set_progress(
    pool: &PgPool,
    id: &str,
    worker_id: Uuid,
    attempt: i32,
    progress: &crate::model::Progress,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE tasks SET progress = $4 WHERE id = $1 AND status = 'processing' AND worker_id = $2 AND attempts = $3",
    )
    .bind(id)
    .bind(worker_id)
    .bind(attempt)
    .bind(serde_json::to_value(progress).expect("progress serialises"))
    .execute(pool)
    .await?;
    let ours = r.rows_affected() == 1;
    if ours {
        notify_changed(pool, vec![id.to_string()]);
    }
    Ok(ours)
}

/// What `POST /tasks/{id}/cancel` did.
#[derive(Debug)]
pub enum CancelResult {
    /// `queued` or `scheduled`: now `cancelled`.
    Cancelled(TaskRow),
    /// `processing`: cancellation requested; the owner aborts it within a heartbeat.
    Requested(TaskRow),
    /// Already terminal: nothing changed.
    Terminal(TaskRow),
    /// No such task.
    NotFound,
}

/// Cancels a task: at once when it waits, by request when it runs.
pub async fn cancel_task(pool: &PgPool, id: &str) -> Result<CancelResult, sqlx::Error> {
    let sql = concat!(
        "UPDATE tasks SET
             status = CASE WHEN status = 'processing' THEN status ELSE 'cancelled' END,
             cancel_requested_at = coalesce(cancel_requested_at, now()),
             finished_at = CASE WHEN status = 'processing' THEN finished_at ELSE now() END,
             error = CASE WHEN status = 'processing' THEN error
                          ELSE jsonb_build_object('kind', 'cancelled', 'message', 'cancelled on request') END
         WHERE id = $1 AND status IN ('queued', 'scheduled', 'processing')
         RETURNING ",
        task_columns!(),
        ""
    );
    match sqlx::query(sql).bind(id).fetch_optional(pool).await? {
        Some(row) => {
            let row = task_from_row(&row)?;
            Ok(if row.task.status == TaskStatus::Cancelled {
                notify_changed(pool, vec![row.task.id.clone()]);
                CancelResult::Cancelled(row)
            } else {
                CancelResult::Requested(row)
            })
        }
        None => Ok(get_task(pool, id).await?.map_or(CancelResult::NotFound, CancelResult::Terminal)),
    }
}

/// Puts a `failed` or `cancelled` task back to `queued` for one more attempt
/// (its retry budget is raised to allow it). `Ok(Err(row))` when the task is in
/// another status, or failed because its record can never be sent (an error
/// kind in [`crate::kafka::UNSENDABLE_KINDS`]); `Ok(Ok(None))` when it does not exist.
pub async fn retry_task(pool: &PgPool, id: &str) -> Result<Result<Option<TaskRow>, TaskRow>, sqlx::Error> {
    let sql = concat!(
        "UPDATE tasks SET status = 'queued', published_at = NULL, max_retries = GREATEST(max_retries, attempts),
             result = NULL, error = NULL, finished_at = NULL, cancel_requested_at = NULL, run_at = NULL,
             progress = NULL
         WHERE id = $1 AND status IN ('failed', 'cancelled')
           AND NOT (status = 'failed' AND coalesce(error->>'kind', '') = ANY($2))
         RETURNING ",
        task_columns!(),
        ""
    );
    let unsendable = crate::kafka::UNSENDABLE_KINDS;
    match sqlx::query(sql).bind(id).bind(&unsendable[..]).fetch_optional(pool).await? {
        Some(row) => {
            notify_changed(pool, vec![id.to_string()]);
            Ok(Ok(Some(task_from_row(&row)?)))
        }
        None => match get_task(pool, id).await? {
            Some(row) => Ok(Err(row)),
            None => Ok(Ok(None)),
        },
    }
}

/// Filters of [`list_tasks`]; `None` matches everything.
#[derive(Debug, Default)]
pub struct TaskFilter {
    /// Status name.
    pub status: Option<String>,
    /// Task (handler) name.
    pub task: Option<String>,
    /// Queue name.
    pub queue: Option<String>,
    /// Worker id.
    pub worker: Option<Uuid>,
}

/// Up to `limit` tasks matching `f`, newest first, strictly older than the
/// `before` cursor (a `seq` from an earlier page). Returns the rows and the
/// cursor of the next page when there may be one.
pub async fn list_tasks(
    pool: &PgPool,
    f: &TaskFilter,
    limit: i64,
    before: Option<i64>,
) -> Result<(Vec<Task>, Option<i64>), sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR name = $2)
           AND ($3::text IS NULL OR queue = $3) AND ($4::uuid IS NULL OR worker_id = $4)
           AND ($5::bigint IS NULL OR seq < $5)
         ORDER BY seq DESC LIMIT $6"
    );
    let rows = sqlx::query(sql)
        .bind(&f.status)
        .bind(&f.task)
        .bind(&f.queue)
        .bind(f.worker)
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let rows: Vec<TaskRow> = rows.iter().map(task_from_row).collect::<Result<_, _>>()?;
    let next = if rows.len() as i64 == limit { rows.last().map(|r| r.seq) } else { None };
    Ok((rows.into_iter().map(|r| r.task).collect(), next))
}

/// The attempt history of a task, oldest first (empty when it never ran).
pub async fn list_attempts(pool: &PgPool, id: &str) -> Result<Vec<crate::model::Attempt>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT attempt, worker_id, started_at, finished_at, outcome, error FROM task_attempts
         WHERE task_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(crate::model::Attempt {
                attempt: r.try_get("attempt")?,
                worker_id: r.try_get("worker_id")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                outcome: r.try_get("outcome")?,
                error: r.try_get::<Option<serde_json::Value>, _>("error")?.and_then(|e| serde_json::from_value(e).ok()),
            })
        })
        .collect()
}

/// Moves due `scheduled` tasks to `queued` (unpublished) and returns them for
/// publishing, oldest due first, at most `limit`.
pub async fn promote_due(pool: &PgPool, limit: i64) -> Result<Vec<Unpublished>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE tasks SET status = 'queued', published_at = NULL
         WHERE id IN (SELECT id FROM tasks WHERE status = 'scheduled' AND run_at <= now()
                      ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           AND status = 'scheduled'
         RETURNING id, name, args::text AS args, kwargs::text AS kwargs, queue, attempts, created_at",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let promoted: Vec<Unpublished> = rows.iter().map(unpublished_from_row).collect::<Result<_, _>>()?;
    notify_changed(pool, promoted.iter().map(|u| u.id.clone()).collect());
    Ok(promoted)
}

/// Deletes up to `batch` terminal tasks (and their attempts) finished more than
/// `ttl` ago; returns how many.
pub async fn delete_expired(pool: &PgPool, ttl: Duration, batch: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM tasks WHERE id IN (
             SELECT id FROM tasks WHERE finished_at < now() - make_interval(secs => $1)
               AND status IN ('success', 'failed', 'cancelled')
             ORDER BY finished_at LIMIT $2)",
    )
    .bind(ttl.as_secs_f64())
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Static facts about a worker process, written once at start.
#[derive(Debug)]
pub struct WorkerInfo<'a> {
    /// Fresh per process start.
    pub id: Uuid,
    /// Host name.
    pub hostname: &'a str,
    /// Process id.
    pub pid: i32,
    /// Queues consumed.
    pub queues: &'a [String],
    /// Task names served.
    pub task_names: &'a [String],
    /// Tasks run at once at most.
    pub concurrency: i32,
}

/// Inserts the worker's row; its first heartbeat is the insert time (database clock).
pub async fn register_worker<'e, E: PgExecutor<'e>>(ex: E, w: &WorkerInfo<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workers (id, hostname, pid, version, queues, task_names, concurrency)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(w.id)
    .bind(w.hostname)
    .bind(w.pid)
    .bind(crate::VERSION)
    .bind(w.queues)
    .bind(w.task_names)
    .bind(w.concurrency)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records `queues` as declared by a gateway (its `--queues`), keeping the
/// ones other gateways declared. Idempotent: a repeat refreshes `declared_at`.
pub async fn declare_queues(pool: &PgPool, queues: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO queues (name) SELECT DISTINCT q FROM UNNEST($1::text[]) AS q ORDER BY q
         ON CONFLICT (name) DO UPDATE SET declared_at = now()",
    )
    .bind(queues)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every queue a gateway has declared on this database, by name; empty when
/// no gateway has started yet.
pub async fn declared_queues(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM queues ORDER BY name").fetch_all(pool).await
}

/// Counters reported with each heartbeat.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerCounts {
    /// Tasks running now.
    pub in_flight: i32,
    /// Successful tasks so far.
    pub processed: i64,
    /// Failed attempts so far.
    pub failed: i64,
}

/// Kafka partitions a worker owns: topic → partition numbers, ascending.
pub type Partitions = std::collections::BTreeMap<String, Vec<i32>>;

/// Sets `last_heartbeat_at = now()` (database clock), the counters and the
/// partitions the worker owns. Returns the database-clock time since the
/// previous heartbeat (`None` when the worker has no row), so a worker can
/// notice a pause its own clocks missed.
pub async fn heartbeat<'e, E: PgExecutor<'e>>(
    ex: E,
    id: Uuid,
    c: WorkerCounts,
    partitions: &Partitions,
    state: WorkerState,
) -> Result<Option<Duration>, sqlx::Error> {
    write_worker_state(ex, id, c, partitions, Some(state)).await
}

/// Marks a worker stopped after a graceful shutdown; the rescuer requeues any
/// task it still held at once instead of waiting for the dead-after threshold.
/// A stopped worker owns no partition.
pub async fn mark_worker_stopped<'e, E: PgExecutor<'e>>(ex: E, id: Uuid, c: WorkerCounts) -> Result<(), sqlx::Error> {
    write_worker_state(ex, id, c, &Partitions::new(), None).await.map(drop)
}

async fn write_worker_state<'e, E: PgExecutor<'e>>(
    ex: E,
    id: Uuid,
    c: WorkerCounts,
    partitions: &Partitions,
    state: Option<WorkerState>,
) -> Result<Option<Duration>, sqlx::Error> {
    // `state` None: the worker stopped. `prev` is read from the statement's
    // snapshot: the row before this update.
    let stopped = state.is_none();
    let gap: Option<f64> = sqlx::query_scalar(
        "UPDATE workers w SET last_heartbeat_at = now(), in_flight = $2, processed = $3, failed = $4,
             stopped_at = CASE WHEN $5 THEN now() ELSE w.stopped_at END, partitions = $6,
             state = coalesce($7, w.state)
         FROM workers prev
         WHERE w.id = $1 AND prev.id = $1
         RETURNING extract(epoch FROM now() - prev.last_heartbeat_at)::float8",
    )
    .bind(id)
    .bind(c.in_flight)
    .bind(c.processed)
    .bind(c.failed)
    .bind(stopped)
    .bind(sqlx::types::Json(partitions))
    .bind(state.map(WorkerState::as_str))
    .fetch_optional(ex)
    .await?;
    Ok(gap.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// An attempt a worker believes it is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAttempt {
    /// Task id.
    pub task_id: String,
    /// Attempt number of the claim.
    pub attempt: i32,
}

/// What the rows say about one of a worker's running attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptSignal {
    /// Cancellation was requested: stop and record `cancelled`.
    CancelRequested(RunningAttempt),
    /// The row is no longer this worker's attempt (the rescuer took it over,
    /// or it finished elsewhere): stop at once; the outcome write is fenced.
    TakenOver(RunningAttempt),
}

/// Checks `running` (this worker's attempts) against the rows: those whose
/// cancellation was requested, and those that are no longer `processing`
/// under `worker_id` and that attempt number. Attempts with neither are not returned.
pub async fn attempt_signals<'e, E: PgExecutor<'e>>(
    ex: E,
    worker_id: Uuid,
    running: &[RunningAttempt],
) -> Result<Vec<AttemptSignal>, sqlx::Error> {
    if running.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = running.iter().map(|r| r.task_id.as_str()).collect();
    let attempts: Vec<i32> = running.iter().map(|r| r.attempt).collect();
    let rows: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT r.id, r.attempt, t.id IS NULL AS taken_over
         FROM unnest($2::text[], $3::int[]) AS r(id, attempt)
         LEFT JOIN tasks t ON t.id = r.id AND t.status = 'processing' AND t.worker_id = $1 AND t.attempts = r.attempt
         WHERE t.id IS NULL OR t.cancel_requested_at IS NOT NULL",
    )
    .bind(worker_id)
    .bind(&ids)
    .bind(&attempts)
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(task_id, attempt, taken_over)| {
            let a = RunningAttempt { task_id, attempt };
            if taken_over {
                AttemptSignal::TakenOver(a)
            } else {
                AttemptSignal::CancelRequested(a)
            }
        })
        .collect())
}

/// Lists workers, newest first; `alive` is computed against `now()` with the
/// dead-after threshold `dead_after`. `alive_filter` keeps only matching rows.
/// A worker that is not alive is listed with no partitions.
pub async fn list_workers(
    pool: &PgPool,
    dead_after: Duration,
    alive_filter: Option<bool>,
) -> Result<Vec<Worker>, sqlx::Error> {
    let rows = sqlx::query(
        // A dead worker (no heartbeat for D) owns no partitions any more,
        // whatever its last heartbeat said.
        "SELECT w.*, a.alive, CASE WHEN a.alive THEN w.partitions ELSE '{}'::jsonb END AS owned,
             CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped' WHEN NOT a.alive THEN 'dead' ELSE w.state END
                 AS shown_state
         FROM workers w CROSS JOIN LATERAL (SELECT w.stopped_at IS NULL
             AND w.last_heartbeat_at > now() - make_interval(secs => $1) AS alive) a
         WHERE $2::boolean IS NULL OR a.alive = $2
         ORDER BY w.started_at DESC, w.id",
    )
    .bind(dead_after.as_secs_f64())
    .bind(alive_filter)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let state = WorkerState::parse(r.try_get("shown_state")?);
            Ok(Worker {
                id: r.try_get("id")?,
                alive: r.try_get("alive")?,
                ready: matches!(state, WorkerState::Ready | WorkerState::Idle),
                state,
                hostname: r.try_get("hostname")?,
                pid: r.try_get("pid")?,
                version: r.try_get("version")?,
                queues: r.try_get("queues")?,
                task_names: r.try_get("task_names")?,
                concurrency: r.try_get("concurrency")?,
                started_at: r.try_get("started_at")?,
                last_heartbeat_at: r.try_get("last_heartbeat_at")?,
                stopped_at: r.try_get("stopped_at")?,
                in_flight: r.try_get("in_flight")?,
                processed: r.try_get("processed")?,
                failed: r.try_get("failed")?,
                partitions: r.try_get::<sqlx::types::Json<Partitions>, _>("owned")?.0,
            })
        })
        .collect()
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
pub async fn rescue_dead_workers(pool: &PgPool, dead_after: Duration) -> Result<Rescued, sqlx::Error> {
    let rows = sqlx::query(
        "WITH lost AS (
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
         SELECT id, status, name, args::text AS args, kwargs::text AS kwargs, queue, attempts, created_at
         FROM moved",
    )
    .bind(dead_after.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let mut rescued = Rescued::default();
    let mut moved = Vec::with_capacity(rows.len());
    for row in &rows {
        moved.push(row.try_get::<String, _>("id")?);
        if row.try_get::<String, _>("status")? == "queued" {
            rescued.requeued.push(unpublished_from_row(row)?);
        } else {
            rescued.failed += 1;
        }
    }
    notify_changed(pool, moved);
    Ok(rescued)
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

/// Up to `limit` `queued` rows with no `published_at`, in submission order.
/// Rows submitted less than `grace` ago are left to the gateway that accepted
/// them (it is still waiting for the broker's ack); requeued rows are due at once.
pub async fn fetch_unpublished(pool: &PgPool, grace: Duration, limit: i64) -> Result<Vec<Unpublished>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, args::text AS args, kwargs::text AS kwargs, queue, attempts, created_at
         FROM tasks
         WHERE status = 'queued' AND published_at IS NULL
           AND (attempts > 0 OR created_at < now() - make_interval(secs => $1))
         ORDER BY seq LIMIT $2",
    )
    .bind(grace.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(unpublished_from_row).collect()
}

fn unpublished_from_row(r: &PgRow) -> Result<Unpublished, sqlx::Error> {
    Ok(Unpublished {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        args: raw(r.try_get("args")?)?,
        kwargs: raw(r.try_get("kwargs")?)?,
        queue: r.try_get("queue")?,
        attempts: r.try_get("attempts")?,
        created_at: r.try_get("created_at")?,
    })
}

/// `SELECT 1` within the pool's acquire timeout: true when PostgreSQL answers.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::event_payloads;

    #[test]
    fn event_payloads_stay_under_the_limit_and_keep_every_id() {
        let ids: Vec<String> = (0..1000).map(|i| format!("task-{i:04}")).collect();
        let payloads = event_payloads(&ids, 100);
        assert!(payloads.iter().all(|p| p.len() <= 100));
        let back: Vec<&str> = payloads.iter().flat_map(|p| p.split(',')).collect();
        assert_eq!(back, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(event_payloads::<String>(&[], 100).is_empty());
        assert_eq!(event_payloads(&["a", "b"], 100), vec!["a,b"]);
    }
}
