//! The limits pass (docs/limits.md): held tasks of buckets that have room
//! are released and sent, round-robin between buckets. It opens rate
//! windows (no event frees a rate slot) and repairs what an older process or
//! a crash left (a slot freed without a release); in normal runs with
//! concurrency limits alone it finds nothing to do. The cleaner's cadence
//! prunes release rows older than their window.

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::tenants::Routes;

/// Buckets one pass looks at, least recently served first.
pub(crate) const BUCKETS: i64 = 1000;

/// One pass; returns how many tasks were released. Released tasks the broker
/// did not acknowledge stay unpublished for the publisher.
pub(crate) async fn release(routes: &Routes, pool: &PgPool, producer: &FutureProducer) -> usize {
    match crate::store::limits::release_pass(pool, BUCKETS).await {
        Ok(rows) => {
            let n = rows.len();
            super::publisher::publish_rows(routes, pool, producer, rows).await;
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "limits pass failed");
            0
        }
    }
}

/// Deletes release rows no window needs any more.
pub(crate) async fn prune(pool: &PgPool) {
    if let Err(e) = crate::store::limits::prune_releases(pool).await {
        tracing::warn!(error = %e, "pruning limit releases failed");
    }
}
