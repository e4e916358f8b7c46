//! Marks acknowledged tasks as published in batches: acks from many concurrent
//! submissions are gathered for a few milliseconds and written with one UPDATE,
//! instead of one UPDATE per task.

use std::time::Duration;

use sqlx::PgPool;
use yadtq_core::batch::Batcher;

/// Longest a task id waits before its batch is written.
const LINGER: Duration = Duration::from_millis(5);
/// Ids written per UPDATE at most.
const MAX_BATCH: usize = 1000;

/// Takes acknowledged task ids (`Marker::send`); writes them in batches.
pub type Marker = std::sync::Arc<Batcher<String, ()>>;

/// Starts the writer. A failed write is logged; the publisher then sends those
/// tasks again (harmless: the claim absorbs duplicates).
pub fn spawn(pool: PgPool) -> Marker {
    std::sync::Arc::new(Batcher::spawn(LINGER, MAX_BATCH, 1, move |ids: Vec<String>| {
        let pool = pool.clone();
        async move {
            if let Err(e) = yadtq_core::store::mark_published(&pool, &ids).await {
                tracing::warn!(error = %e, count = ids.len(), "cannot mark tasks published; the publisher will resend them");
            }
            vec![(); ids.len()]
        }
    }))
}
