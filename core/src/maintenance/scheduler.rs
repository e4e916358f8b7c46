//! The scheduler: `scheduled` tasks whose `run_at` has come (countdown, eta,
//! retry backoff) become `queued` and are sent to Kafka in the same pass.

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::tenants::Routes;

/// Tasks promoted per pass at most.
pub(crate) const BATCH: i64 = 1000;

/// One scheduler pass; returns how many tasks were promoted. Promoted tasks the
/// broker did not acknowledge stay unpublished for the publisher.
pub(crate) async fn promote(routes: &Routes, pool: &PgPool, producer: &FutureProducer) -> usize {
    match crate::store::tasks::promote_due(pool, BATCH).await {
        Ok(rows) => {
            let n = rows.len();
            super::publisher::publish_rows(routes, pool, producer, rows).await;
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "scheduler pass failed");
            0
        }
    }
}
