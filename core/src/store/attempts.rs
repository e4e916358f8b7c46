//! The `task_attempts` table: one row per claim (opened by
//! [`super::tasks::claim`], closed by the outcome or the rescue), and what
//! the rows say about the attempts a worker believes it is running.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::StoreError;
use crate::model::{Attempt, AttemptOutcome};
use crate::names::TaskKey;

struct AttemptRecord {
    attempt: i32,
    worker_id: Uuid,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: Option<AttemptOutcome>,
    error: Option<Json<serde_json::Value>>,
}

/// The attempt history of a task, oldest first (empty when it never ran).
pub async fn list(pool: &PgPool, key: &TaskKey) -> Result<Vec<Attempt>, StoreError> {
    let rows = sqlx::query_as!(
        AttemptRecord,
        r#"SELECT attempt, worker_id, started_at, finished_at, outcome AS "outcome: AttemptOutcome",
                  error AS "error: Json<serde_json::Value>"
           FROM task_attempts WHERE task_id = $1 ORDER BY attempt"#,
        key.as_str()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Attempt {
            attempt: r.attempt,
            worker_id: r.worker_id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            error: r.error.and_then(|e| serde_json::from_value(e.0).ok()),
        })
        .collect())
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
pub async fn signals<'e, E: PgExecutor<'e>>(
    ex: E,
    worker_id: Uuid,
    running: &[RunningAttempt],
) -> Result<Vec<AttemptSignal>, StoreError> {
    if running.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = running.iter().map(|r| r.task_id.as_str()).collect();
    let attempts: Vec<i32> = running.iter().map(|r| r.attempt).collect();
    let rows = sqlx::query!(
        r#"SELECT r.id AS "id!", r.attempt AS "attempt!", t.id IS NULL AS "taken_over!"
           FROM unnest($2::text[], $3::int[]) AS r(id, attempt)
           LEFT JOIN tasks t ON t.id = r.id AND t.status = 'processing' AND t.worker_id = $1
                             AND t.attempts = r.attempt
           WHERE t.id IS NULL OR t.cancel_requested_at IS NOT NULL"#,
        worker_id,
        &ids as &[&str],
        &attempts
    )
    .fetch_all(ex)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let a = RunningAttempt { task_id: r.id, attempt: r.attempt };
            if r.taken_over {
                AttemptSignal::TakenOver(a)
            } else {
                AttemptSignal::CancelRequested(a)
            }
        })
        .collect())
}
