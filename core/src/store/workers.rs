//! The `workers` table: one row per worker process start, its heartbeats
//! (database clock) and what it reports with them.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Worker, WorkerState};

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
    /// The tenants of its `--tenants`, by name; `None` for a worker of the
    /// shared topics.
    pub tenants: Option<&'a [String]>,
}

/// Inserts the worker's row; its first heartbeat is the insert time (database clock).
pub async fn register<'e, E: PgExecutor<'e>>(ex: E, w: &WorkerInfo<'_>) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO workers (id, hostname, pid, version, queues, task_names, concurrency, tenants)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        w.id,
        w.hostname,
        w.pid,
        crate::VERSION,
        w.queues,
        w.task_names,
        w.concurrency,
        w.tenants
    )
    .execute(ex)
    .await?;
    Ok(())
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
pub type Partitions = BTreeMap<String, Vec<i32>>;

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Written; the database-clock time since the previous heartbeat, so a
    /// worker can notice a pause its own clocks missed.
    Written {
        /// Time since the previous heartbeat (database clock).
        since_previous: Duration,
    },
    /// The worker has no row (deleted by retention, or never registered).
    NoRow,
}

/// Sets `last_heartbeat_at = now()` (database clock), the counters, the
/// partitions the worker owns and its state.
pub async fn heartbeat<'e, E: PgExecutor<'e>>(
    ex: E,
    id: Uuid,
    c: WorkerCounts,
    partitions: &Partitions,
    state: WorkerState,
) -> Result<Beat, StoreError> {
    write_state(ex, id, c, partitions, Some(state)).await
}

/// Marks a worker stopped after a graceful shutdown; the rescuer requeues any
/// task it still held at once instead of waiting for the dead-after threshold.
/// A stopped worker owns no partition.
pub async fn mark_stopped<'e, E: PgExecutor<'e>>(ex: E, id: Uuid, c: WorkerCounts) -> Result<(), StoreError> {
    write_state(ex, id, c, &Partitions::new(), None).await.map(drop)
}

/// `state` None: the worker stopped. `prev` is read from the statement's
/// snapshot: the row before this update.
async fn write_state<'e, E: PgExecutor<'e>>(
    ex: E,
    id: Uuid,
    c: WorkerCounts,
    partitions: &Partitions,
    state: Option<WorkerState>,
) -> Result<Beat, StoreError> {
    let gap = sqlx::query_scalar!(
        r#"UPDATE workers w SET last_heartbeat_at = now(), in_flight = $2, processed = $3, failed = $4,
               stopped_at = CASE WHEN $5 THEN now() ELSE w.stopped_at END, partitions = $6,
               state = coalesce($7, w.state)
           FROM workers prev
           WHERE w.id = $1 AND prev.id = $1
           RETURNING extract(epoch FROM now() - prev.last_heartbeat_at)::float8 AS "gap!""#,
        id,
        c.in_flight,
        c.processed,
        c.failed,
        state.is_none(),
        Json(partitions) as _,
        state as Option<WorkerState>
    )
    .fetch_optional(ex)
    .await?;
    Ok(match gap {
        Some(s) => Beat::Written { since_previous: Duration::from_secs_f64(s.max(0.0)) },
        None => Beat::NoRow,
    })
}

/// One page of [`list`].
#[derive(Debug)]
pub struct WorkerPage {
    /// Newest first (by registration).
    pub workers: Vec<Worker>,
    /// Cursor of the next page (`before`), when there may be one.
    pub next: Option<i64>,
}

/// Lists up to `limit` workers, newest first, registered strictly before the
/// `before` cursor (a value of an earlier page's [`WorkerPage::next`]);
/// `alive` is computed against `now()` with the dead-after threshold
/// `dead_after`. `alive_filter` keeps only matching rows. A worker that is
/// not alive is listed with no partitions.
///
/// Errors: [`StoreError`] when PostgreSQL fails or cannot be reached.
pub async fn list(
    pool: &PgPool,
    dead_after: Duration,
    alive_filter: Option<bool>,
    limit: i64,
    before: Option<i64>,
) -> Result<WorkerPage, StoreError> {
    // A dead worker (no heartbeat for D) owns no partitions any more,
    // whatever its last heartbeat said.
    let rows = sqlx::query!(
        r#"SELECT w.id, w.seq AS "seq!", w.hostname, w.pid, w.version, w.queues, w.task_names, w.concurrency, w.tenants,
               w.started_at, w.last_heartbeat_at, w.stopped_at, w.in_flight, w.processed, w.failed,
               a.alive AS "alive!",
               CASE WHEN a.alive THEN w.partitions ELSE '{}'::jsonb END AS "partitions!: Json<Partitions>",
               CASE WHEN w.stopped_at IS NOT NULL THEN 'stopped' WHEN NOT a.alive THEN 'dead' ELSE w.state END
                   AS "state!: WorkerState"
           FROM workers w CROSS JOIN LATERAL (SELECT w.stopped_at IS NULL
               AND w.last_heartbeat_at > now() - make_interval(secs => $1) AS alive) a
           WHERE ($2::boolean IS NULL OR a.alive = $2) AND ($3::bigint IS NULL OR w.seq < $3)
           ORDER BY w.seq DESC LIMIT $4"#,
        dead_after.as_secs_f64(),
        alive_filter,
        before,
        limit
    )
    .fetch_all(pool)
    .await?;
    let next = if rows.len() as i64 == limit { rows.last().map(|r| r.seq) } else { None };
    let workers = rows
        .into_iter()
        .map(|r| Worker {
            id: r.id,
            alive: r.alive,
            ready: matches!(r.state, WorkerState::Ready | WorkerState::Idle),
            state: r.state,
            hostname: Some(r.hostname),
            pid: Some(r.pid),
            version: Some(r.version),
            queues: r.queues,
            task_names: r.task_names,
            concurrency: r.concurrency,
            tenants: r.tenants,
            started_at: r.started_at,
            last_heartbeat_at: r.last_heartbeat_at,
            stopped_at: r.stopped_at,
            in_flight: r.in_flight,
            processed: r.processed,
            failed: r.failed,
            partitions: r.partitions.0,
        })
        .collect();
    Ok(WorkerPage { workers, next })
}

/// Deletes up to `batch` rows of workers that stopped or died and whose last
/// heartbeat is older than `retention`; returns how many were deleted. A live
/// worker (heartbeat within `dead_after`, not stopped) is never deleted,
/// whatever `retention` is, and neither is one that still holds a
/// `processing` task: the rescuer finds those tasks through their worker's
/// row. A pruned worker that was only paused finds no row at its next
/// heartbeat ([`Beat::NoRow`]).
///
/// Errors: [`StoreError`] when PostgreSQL fails or cannot be reached.
pub(crate) async fn delete_expired(
    pool: &PgPool,
    retention: Duration,
    dead_after: Duration,
    batch: i64,
) -> Result<u64, StoreError> {
    // Picked once in a materialised CTE, so the LIMIT holds (see `tasks::promote_due`).
    let done = sqlx::query!(
        "WITH expired AS MATERIALIZED (
             SELECT w.id AS expired_id FROM workers w
             WHERE w.last_heartbeat_at < now() - make_interval(secs => $1)
               AND (w.stopped_at IS NOT NULL OR w.last_heartbeat_at < now() - make_interval(secs => $2))
               AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.worker_id = w.id AND t.status = 'processing')
             ORDER BY w.last_heartbeat_at LIMIT $3
             FOR UPDATE SKIP LOCKED)
         DELETE FROM workers USING expired WHERE id = expired.expired_id",
        retention.as_secs_f64(),
        dead_after.as_secs_f64(),
        batch
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
