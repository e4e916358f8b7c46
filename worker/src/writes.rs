//! The worker's database writes on the task path (claims and outcomes), each
//! micro-batched: concurrent records share one statement and one commit.

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;
use yadtq_core::batch::Batcher;
use yadtq_core::names::TaskKey;
use yadtq_core::store::tasks::{self, AttemptOutcomeRecord, ClaimResult, Outcome, Recorded};
use yadtq_core::store::StoreError;

/// Longest a claim or outcome waits for others to share its statement.
const LINGER: Duration = Duration::from_millis(1);
/// Statements in flight at once per kind.
const PARALLEL: usize = 2;
/// Most rows per statement.
const MAX_BATCH: usize = 256;

/// An outcome to write.
struct OutcomeIn {
    task_id: TaskKey,
    attempt: i32,
    outcome: Outcome,
    /// The claim said the task takes limits ([`tasks::Claimed::limited`]).
    limited: bool,
}
/// What became of an outcome write ([`Writes::record`]).
pub struct OutcomeWrite {
    /// Whether it was written: [`Recorded::Fenced`] when the task moved on,
    /// an error when PostgreSQL failed or refused the statement.
    pub recorded: Result<Recorded, StoreError>,
    /// The outcome, handed back so a retry needs no copy of it.
    pub outcome: Outcome,
}

/// Batched claims and outcome writes of one worker.
pub struct Writes {
    claims: Batcher<TaskKey, Result<ClaimResult, StoreError>>,
    outcomes: Batcher<OutcomeIn, OutcomeWrite>,
}

impl Writes {
    /// Starts the batchers for `worker_id` on `pool`.
    pub fn new(pool: PgPool, worker_id: Uuid) -> Self {
        let p = pool.clone();
        let claims = Batcher::spawn(LINGER, MAX_BATCH, PARALLEL, move |ids: Vec<TaskKey>| {
            let p = p.clone();
            async move {
                match tasks::claim(&p, &ids, worker_id).await {
                    Ok(claimed) => claimed.into_iter().map(Ok).collect(),
                    Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
                }
            }
        });
        let outcomes = Batcher::spawn(LINGER, MAX_BATCH, PARALLEL, move |batch: Vec<OutcomeIn>| {
            let p = pool.clone();
            async move { record_all(&p, worker_id, batch).await }
        });
        Self { claims, outcomes }
    }

    /// Claims task `id` ([`tasks::claim`]).
    pub async fn claim(&self, id: &TaskKey) -> Result<ClaimResult, StoreError> {
        self.claims.call(id.clone()).await.unwrap_or_else(|| Err(sqlx::Error::PoolClosed.into()))
    }

    /// Records an outcome ([`OutcomeWrite`]) of an attempt whose claim said
    /// `limited`; `None` only when the batcher has stopped.
    pub async fn record(&self, id: &TaskKey, attempt: i32, limited: bool, outcome: Outcome) -> Option<OutcomeWrite> {
        self.outcomes.call(OutcomeIn { task_id: id.clone(), attempt, outcome, limited }).await
    }
}

/// Writes a batch of outcomes; when PostgreSQL refuses the statement, writes
/// them one by one so only the outcome at fault gets the refusal.
async fn record_all(pool: &PgPool, worker_id: Uuid, batch: Vec<OutcomeIn>) -> Vec<OutcomeWrite> {
    let results = write_all(pool, worker_id, &batch).await;
    results.into_iter().zip(batch).map(|(recorded, o)| OutcomeWrite { recorded, outcome: o.outcome }).collect()
}

async fn write_all(pool: &PgPool, worker_id: Uuid, batch: &[OutcomeIn]) -> Vec<Result<Recorded, StoreError>> {
    let rows: Vec<AttemptOutcomeRecord<'_>> = batch
        .iter()
        .map(|o| AttemptOutcomeRecord {
            task_id: &o.task_id,
            attempt: o.attempt,
            outcome: &o.outcome,
            limited: o.limited,
        })
        .collect();
    match tasks::record_outcomes(pool, worker_id, &rows).await {
        Ok(done) => done.into_iter().map(Ok).collect(),
        Err(StoreError::Refused(_)) if rows.len() > 1 => {
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(tasks::record_outcomes(pool, worker_id, std::slice::from_ref(row)).await.map(|d| d[0]));
            }
            out
        }
        Err(e) => rows.iter().map(|_| Err(e.clone())).collect(),
    }
}
