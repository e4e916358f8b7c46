//! Read-only aggregate queries the maintenance leader samples for the
//! metrics (docs/operations.md), checked at build time like the store's
//! (`sqlx::query!`, offline data in `.sqlx/`): task counts by queue and status, the oldest
//! queued task per queue, the publisher's backlog, workers alive. Each is one
//! statement on the pool; the active-status ones use partial indexes
//! (`tasks_queued_queue`, `tasks_scheduled_run_at`,
//! `tasks_processing_worker`), the terminal counts scan the table and are
//! sampled less often.

use std::time::Duration;

use sqlx::PgPool;

use super::StoreError;
use crate::model::TaskStatus;

/// Tasks in one (queue, status) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCount {
    /// Queue name.
    pub queue: String,
    /// Task status.
    pub status: TaskStatus,
    /// Number of tasks.
    pub count: i64,
}

/// What one sample of the active (non-terminal) tasks found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Active {
    /// Counts of `queued`, `scheduled` and `processing` tasks per queue, and
    /// of statuses this release does not know ([`TaskStatus::Other`], a
    /// newer release's, which are never terminal); pairs with no task are absent.
    pub counts: Vec<StatusCount>,
    /// Per queue with queued tasks: seconds since its oldest `queued` task
    /// became due (the later of `created_at` and `run_at`), database clock.
    pub oldest_queued: Vec<(String, f64)>,
    /// `queued` rows with no `published_at` (not yet sent to Kafka).
    pub unpublished: i64,
}

/// Counts of `queued`, `scheduled` and `processing` tasks per queue (and of
/// unknown statuses, verbatim), the oldest queued age per queue (seconds)
/// and the publisher's backlog (rows). One branch per status, so each uses
/// its partial index (`status IN (…)` matches none of them and scans the
/// table): ~5 ms with 10,000 queued rows in a table of a million. Unknown
/// statuses read `tasks_other_status` (migration 0015), empty until a newer
/// release writes one.
pub async fn active(pool: &PgPool) -> Result<Active, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT queue AS "queue!", 'queued' AS "status!: TaskStatus", count(*) AS "n!",
                extract(epoch FROM now() - min(greatest(created_at, coalesce(run_at, created_at))))::float8 AS oldest,
                count(*) FILTER (WHERE published_at IS NULL) AS "unpublished!"
           FROM tasks WHERE status = 'queued' GROUP BY queue
         UNION ALL
         SELECT queue, 'scheduled', count(*), NULL, 0 FROM tasks WHERE status = 'scheduled' GROUP BY queue
         UNION ALL
         SELECT queue, 'processing', count(*), NULL, 0 FROM tasks WHERE status = 'processing' GROUP BY queue
         UNION ALL
         SELECT queue, status, count(*), NULL, 0 FROM tasks
          WHERE status NOT IN ('queued', 'scheduled', 'processing', 'success', 'failed', 'cancelled')
          GROUP BY queue, status"#
    )
    .fetch_all(pool)
    .await?;
    let mut out = Active::default();
    for row in rows {
        if let Some(oldest) = row.oldest {
            out.oldest_queued.push((row.queue.clone(), oldest.max(0.0)));
        }
        out.unpublished += row.unpublished;
        out.counts.push(StatusCount { queue: row.queue, status: row.status, count: row.n });
    }
    Ok(out)
}

/// Counts of finished tasks (`success`, `failed`, `cancelled`) per queue,
/// kept until the retention deletes them. Scans the table (~0.4 s for a
/// million rows): sample it rarely.
pub(crate) async fn finished(pool: &PgPool) -> Result<Vec<StatusCount>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT queue AS "queue!", status AS "status!: TaskStatus", count(*) AS "n!" FROM tasks
          WHERE status IN ('success', 'failed', 'cancelled') GROUP BY queue, status"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| StatusCount { queue: r.queue, status: r.status, count: r.n }).collect())
}

/// Workers alive: last heartbeat within `dead_after` of the database clock
/// and not stopped (the `alive` of GET /workers).
pub(crate) async fn workers_alive(pool: &PgPool, dead_after: Duration) -> Result<i64, StoreError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM workers
          WHERE stopped_at IS NULL AND last_heartbeat_at > now() - make_interval(secs => $1)"#,
        dead_after.as_secs_f64()
    )
    .fetch_one(pool)
    .await?;
    Ok(n)
}
