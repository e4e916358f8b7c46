//! The worker's database writes on the task path (claims and outcomes), each
//! micro-batched: concurrent records share one statement and one commit.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;
use yadtq_core::store::{self, Claimed, Outcome};

use yadtq_core::batch::Batcher;

/// Longest a claim or outcome waits for others to share its statement.
const LINGER: Duration = Duration::from_millis(1);
/// Statements in flight at once per kind.
const PARALLEL: usize = 2;
/// Most rows per statement.
const MAX_BATCH: usize = 256;

/// Why a write did not happen.
#[derive(Debug, Clone)]
pub enum WriteError {
    /// PostgreSQL refused the statement itself (e.g. a result it cannot store).
    Refused(String),
    /// PostgreSQL could not be reached or the connection failed: retry later.
    Unavailable(String),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) => Self::Refused(d.to_string()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(e) => write!(f, "refused: {e}"),
            Self::Unavailable(e) => write!(f, "unavailable: {e}"),
        }
    }
}

/// An outcome to write: task id, attempt, outcome.
type OutcomeIn = (String, i32, Outcome);
/// Whether it was written, and the outcome handed back for a retry.
type OutcomeOut = (Result<bool, WriteError>, Outcome);

/// Batched claims and outcome writes of one worker.
pub struct Writes {
    claims: Batcher<String, Result<Option<Claimed>, WriteError>>,
    outcomes: Batcher<OutcomeIn, OutcomeOut>,
}

impl Writes {
    /// Starts the batchers for `worker_id` on `pool`.
    pub fn new(pool: PgPool, worker_id: Uuid) -> Self {
        let p = pool.clone();
        let claims = Batcher::spawn(LINGER, MAX_BATCH, PARALLEL, move |ids: Vec<String>| {
            let p = p.clone();
            async move {
                match store::claim_tasks(&p, &ids, worker_id).await {
                    Ok(claimed) => claimed.into_iter().map(Ok).collect(),
                    Err(e) => {
                        let e = WriteError::from(e);
                        ids.iter().map(|_| Err(e.clone())).collect()
                    }
                }
            }
        });
        let outcomes = Batcher::spawn(LINGER, MAX_BATCH, PARALLEL, move |batch: Vec<OutcomeIn>| {
            let p = pool.clone();
            async move { record_all(&p, worker_id, batch).await }
        });
        Self { claims, outcomes }
    }

    /// Claims task `id`: `Ok(None)` when it is not `queued`.
    pub async fn claim(&self, id: &str) -> Result<Option<Claimed>, WriteError> {
        self.claims.call(id.to_string()).await.unwrap_or_else(|| Err(WriteError::Unavailable("worker stopping".into())))
    }

    /// Records an outcome: `Ok(false)` when fenced out (the task moved on).
    /// The outcome comes back with the result, so a retry needs no copy of it;
    /// `None` only when the batcher has stopped.
    pub async fn record(
        &self,
        id: &str,
        attempt: i32,
        outcome: Outcome,
    ) -> Option<(Result<bool, WriteError>, Outcome)> {
        self.outcomes.call((id.to_string(), attempt, outcome)).await
    }
}

/// Writes a batch of outcomes; when PostgreSQL refuses the statement, writes
/// them one by one so only the outcome at fault gets the refusal.
async fn record_all(pool: &PgPool, worker_id: Uuid, batch: Vec<OutcomeIn>) -> Vec<OutcomeOut> {
    let results = write_all(pool, worker_id, &batch).await;
    results.into_iter().zip(batch).map(|(r, (_, _, outcome))| (r, outcome)).collect()
}

async fn write_all(pool: &PgPool, worker_id: Uuid, batch: &[OutcomeIn]) -> Vec<Result<bool, WriteError>> {
    let rows: Vec<store::OutcomeRecord<'_>> = batch.iter().map(|(id, a, o)| (id.as_str(), *a, o)).collect();
    match store::record_outcomes(pool, worker_id, &rows).await {
        Ok(done) => done.into_iter().map(Ok).collect(),
        Err(sqlx::Error::Database(_)) if rows.len() > 1 => {
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(
                    store::record_outcomes(pool, worker_id, std::slice::from_ref(row))
                        .await
                        .map(|d| d[0])
                        .map_err(WriteError::from),
                );
            }
            out
        }
        Err(e) => {
            let e = WriteError::from(e);
            rows.iter().map(|_| Err(e.clone())).collect()
        }
    }
}
