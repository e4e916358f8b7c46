//! The per-queue overview that `GET /queues` (and the dashboard) reads:
//! tasks finished per minute over a recent window, by queue and outcome.
//! The active counts come from [`super::stats::active`]; finished counts
//! here read only the window, through the `tasks_finished_at` partial
//! index, so the cost follows the recent throughput, not the table's size.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::StoreError;
use crate::model::TaskStatus;

/// Tasks of one queue that finished in one minute with one status.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedMinute {
    /// Queue name.
    pub queue: String,
    /// Start of the minute (database clock, truncated to the minute).
    pub minute: DateTime<Utc>,
    /// `Success`, `Failed` or `Cancelled`.
    pub status: TaskStatus,
    /// Tasks that finished in that minute with that status.
    pub count: i64,
}

/// Tasks finished in the last `minutes` minutes (the current, partial minute
/// included), per queue, minute and status, oldest minute first; minutes in
/// which nothing finished are absent. Also returns the database clock's
/// current minute, so callers fill the gaps without their own clock.
pub async fn finished_per_minute(
    pool: &PgPool,
    minutes: i32,
) -> Result<(DateTime<Utc>, Vec<FinishedMinute>), StoreError> {
    let now = sqlx::query_scalar!(r#"SELECT date_trunc('minute', now()) AS "now!""#).fetch_one(pool).await?;
    let rows = sqlx::query!(
        r#"SELECT queue AS "queue!", date_trunc('minute', finished_at) AS "minute!", status AS "status!: TaskStatus",
                  count(*) AS "n!"
             FROM tasks
            WHERE finished_at IS NOT NULL
              AND finished_at >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
              AND status IN ('success', 'failed', 'cancelled')
            GROUP BY 1, 2, 3 ORDER BY 2, 1, 3"#,
        minutes
    )
    .fetch_all(pool)
    .await?;
    let per_minute = rows
        .into_iter()
        .map(|r| FinishedMinute { queue: r.queue, minute: r.minute, status: r.status, count: r.n })
        .collect();
    Ok((now, per_minute))
}
