//! Group insert of single submissions: `POST /tasks` requests that arrive
//! while earlier ones are being written share one INSERT and one commit
//! (a lone request is written at once), which keeps PostgreSQL's per-commit
//! cost from capping the submit rate.

use std::time::Duration;

use sqlx::PgPool;
use yadtq_core::batch::Batcher;
use yadtq_core::store::tasks::{self, Inserted, NewTask};
use yadtq_core::store::StoreError;

/// Rows per statement at most.
const MAX_BATCH: usize = 256;
/// Statements in flight at once.
const PARALLEL: usize = 4;

/// Batched task inserts.
pub struct Inserter {
    batcher: Batcher<NewTask, Result<Inserted, StoreError>>,
}

impl Inserter {
    /// Starts the insert tasks on `pool`.
    pub fn new(pool: PgPool) -> Self {
        let batcher = Batcher::spawn(Duration::ZERO, MAX_BATCH, PARALLEL, move |batch: Vec<NewTask>| {
            let pool = pool.clone();
            async move {
                match tasks::insert_each(&pool, &batch).await {
                    Ok(out) => out.into_iter().map(Ok).collect(),
                    Err(e) => batch.iter().map(|_| Err(e.clone())).collect(),
                }
            }
        });
        Self { batcher }
    }

    /// Inserts one task (or finds it, for an idempotent repeat).
    pub async fn insert(&self, task: NewTask) -> Result<Inserted, StoreError> {
        self.batcher.call(task).await.unwrap_or_else(|| Err(sqlx::Error::PoolClosed.into()))
    }
}
