//! The worker's database writes on the task path (claims and outcomes), each
//! micro-batched: concurrent records share one statement and one commit.
//! Outcomes of workflow nodes are written apart from the others, in a
//! transaction that also fans in ([`yadtq_core::store::workflows::record_outcomes`]);
//! the nodes it releases are published right after its commit. A batch of
//! plain tasks runs the one outcome statement it always ran.

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use uuid::Uuid;
use yadtq_core::batch::Batcher;
use yadtq_core::names::TaskKey;
use yadtq_core::store::tasks::{self, AttemptOutcomeRecord, ClaimResult, Outcome, Recorded};
use yadtq_core::store::{workflows, StoreError};
use yadtq_core::tenants::Routes;

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
    /// Starts the batchers for `worker_id` on `pool`; workflow nodes that an
    /// outcome releases are sent with `producer` to the topics of `routes`.
    pub fn new(pool: PgPool, worker_id: Uuid, producer: FutureProducer, routes: Routes) -> Self {
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
            let (producer, routes) = (producer.clone(), routes.clone());
            async move { record_all(&p, worker_id, batch, &producer, &routes).await }
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
async fn record_all(
    pool: &PgPool,
    worker_id: Uuid,
    batch: Vec<OutcomeIn>,
    producer: &FutureProducer,
    routes: &Routes,
) -> Vec<OutcomeWrite> {
    // The batcher answers in input order: split by kind, then put back.
    let is_node: Vec<bool> = batch.iter().map(|o| workflows::node_key(&o.task_id)).collect();
    let (nodes, plain): (Vec<OutcomeIn>, Vec<OutcomeIn>) =
        batch.into_iter().partition(|o| workflows::node_key(&o.task_id));
    let written = |results: Vec<Result<Recorded, StoreError>>, batch: Vec<OutcomeIn>| {
        results.into_iter().zip(batch).map(|(recorded, o)| OutcomeWrite { recorded, outcome: o.outcome })
    };
    let (results, mut released) = write_all(pool, worker_id, &plain).await;
    let mut plain_out = written(results, plain);
    let (results, from_nodes) = write_nodes(pool, worker_id, &nodes).await;
    let mut nodes_out = written(results, nodes);
    released.extend(from_nodes);
    // Unacknowledged ones stay unpublished for the publisher.
    yadtq_core::maintenance::publish_rows(routes, pool, producer, released).await;
    is_node
        .into_iter()
        .map(|node| if node { nodes_out.next() } else { plain_out.next() }.expect("one write per outcome"))
        .collect()
}

fn rows_of(batch: &[OutcomeIn]) -> Vec<AttemptOutcomeRecord<'_>> {
    batch
        .iter()
        .map(|o| AttemptOutcomeRecord {
            task_id: &o.task_id,
            attempt: o.attempt,
            outcome: &o.outcome,
            limited: o.limited,
        })
        .collect()
}

/// Writes the outcomes of workflow nodes with their fan-in; returns each
/// one's result and the nodes released to `queued`.
async fn write_nodes(
    pool: &PgPool,
    worker_id: Uuid,
    batch: &[OutcomeIn],
) -> (Vec<Result<Recorded, StoreError>>, Vec<tasks::Unpublished>) {
    if batch.is_empty() {
        return (Vec::new(), Vec::new());
    }
    match workflows::record_outcomes(pool, worker_id, &rows_of(batch)).await {
        Ok((done, released)) => (done.into_iter().map(Ok).collect(), released),
        Err(e) => (batch.iter().map(|_| Err(e.clone())).collect(), Vec::new()),
    }
}

/// Writes the outcomes of plain tasks; returns each one's result and the
/// held tasks that limited ones' freed slots released to `queued`.
async fn write_all(
    pool: &PgPool,
    worker_id: Uuid,
    batch: &[OutcomeIn],
) -> (Vec<Result<Recorded, StoreError>>, Vec<tasks::Unpublished>) {
    if batch.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let rows = rows_of(batch);
    match tasks::record_outcomes_releasing(pool, worker_id, &rows).await {
        Ok((done, released)) => (done.into_iter().map(Ok).collect(), released),
        Err(StoreError::Refused(_)) if rows.len() > 1 => {
            let (mut out, mut released) = (Vec::with_capacity(rows.len()), Vec::new());
            for row in &rows {
                match tasks::record_outcomes_releasing(pool, worker_id, std::slice::from_ref(row)).await {
                    Ok((d, r)) => {
                        out.push(Ok(d[0]));
                        released.extend(r);
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
            (out, released)
        }
        Err(e) => (rows.iter().map(|_| Err(e.clone())).collect(), Vec::new()),
    }
}
