//! Group insert of single submissions: `POST /tasks` requests that arrive
//! while earlier ones are being written share one INSERT and one commit
//! (a lone request is written at once), which keeps PostgreSQL's per-commit
//! cost from capping the submit rate.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use yadtq_core::batch::Batcher;
use yadtq_core::store::{self, Inserted, NewTask};

/// Rows per statement at most.
const MAX_BATCH: usize = 256;
/// Statements in flight at once.
const PARALLEL: usize = 4;

/// Why an insert did not happen (the error text, shared by the whole batch).
pub type InsertError = Arc<sqlx::Error>;

/// Batched task inserts.
pub struct Inserter {
    batcher: Batcher<NewTask, Result<Inserted, InsertError>>,
}

impl Inserter {
    /// Starts the insert tasks on `pool`.
    pub fn new(pool: PgPool) -> Self {
        let batcher = Batcher::spawn(Duration::ZERO, MAX_BATCH, PARALLEL, move |tasks: Vec<NewTask>| {
            let pool = pool.clone();
            async move {
                match store::insert_each(&pool, &tasks).await {
                    Ok(out) => out.into_iter().map(Ok).collect(),
                    Err(e) => {
                        let e = Arc::new(e);
                        tasks.iter().map(|_| Err(e.clone())).collect()
                    }
                }
            }
        });
        Self { batcher }
    }

    /// Inserts one task (or finds it, for an idempotent repeat).
    pub async fn insert(&self, task: NewTask) -> Result<Inserted, InsertError> {
        self.batcher.call(task).await.unwrap_or_else(|| Err(Arc::new(sqlx::Error::PoolClosed)))
    }
}
