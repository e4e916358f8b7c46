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

/// How long a `held` row without memberships is left to its submitter
/// (which attaches it right after its insert) before the pass settles it.
pub(crate) const UNATTACHED_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Unattached `held` rows one pass settles.
const UNATTACHED: i64 = 1000;

/// One pass; returns how many tasks were released. First the `held` rows a
/// crashed submitter left without memberships, then the buckets. Released
/// tasks the broker did not acknowledge stay unpublished for the publisher.
pub(crate) async fn release(routes: &Routes, pool: &PgPool, producer: &FutureProducer) -> usize {
    let mut n = 0;
    match crate::store::limits::repair_unattached(pool, UNATTACHED_GRACE, UNATTACHED).await {
        Ok((repaired, rows)) => {
            if repaired > 0 {
                tracing::warn!(repaired, "limits pass settled held tasks left without memberships");
            }
            n += rows.len();
            super::publisher::publish_rows(routes, pool, producer, rows).await;
        }
        Err(e) => tracing::warn!(error = %e, "limits repair failed"),
    }
    match crate::store::limits::release_pass(pool, BUCKETS).await {
        Ok(rows) => {
            n += rows.len();
            super::publisher::publish_rows(routes, pool, producer, rows).await;
        }
        Err(e) => tracing::warn!(error = %e, "limits pass failed"),
    }
    n
}

/// Deletes release rows no window needs any more.
pub(crate) async fn prune(pool: &PgPool) {
    if let Err(e) = crate::store::limits::prune_releases(pool).await {
        tracing::warn!(error = %e, "pruning limit releases failed");
    }
}
