//! The cleaner: deletes finished tasks (and, by cascade, their attempts) older
//! than the retention, then the rows of workers that stopped or died longer
//! than the retention ago, in batches so no pass holds locks for long.

use std::time::Duration;

use sqlx::PgPool;

/// Rows deleted per statement.
pub(crate) const BATCH: i64 = 1000;
/// Statements per pass at most, so one pass stays short.
const MAX_BATCHES: usize = 10;

/// One cleaner pass; returns how many tasks were deleted. A worker is
/// dead after `dead_after` without a heartbeat; a live one is never deleted.
pub(crate) async fn clean(pool: &PgPool, retention: Duration, dead_after: Duration) -> u64 {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        match crate::store::tasks::delete_expired(pool, retention, BATCH).await {
            Ok(n) => {
                total += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cleaner pass failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deleted = total, "cleaner: deleted finished tasks past retention");
    }
    let mut workers = 0;
    for _ in 0..MAX_BATCHES {
        match crate::store::workers::delete_expired(pool, retention, dead_after, BATCH).await {
            Ok(n) => {
                workers += n;
                if n < BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cleaner: pruning workers failed");
                break;
            }
        }
    }
    if workers > 0 {
        tracing::info!(deleted = workers, "cleaner: deleted workers stopped or dead past retention");
    }
    total
}
