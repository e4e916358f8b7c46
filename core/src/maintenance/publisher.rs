//! The publisher: sends `queued` rows that have no `published_at` (the gateway's
//! ack wait ran out, Kafka was down, the rescuer requeued them, or the
//! scheduler promoted them), in submission order, marks the ones the broker
//! acknowledged, and fails the ones it refused for the record itself (too
//! large, invalid: [`crate::kafka::refusal`]); everything else waits for the
//! next pass.

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::store::tasks::Unpublished;
use crate::tenants::Routes;

/// Rows younger than this are still the accepting gateway's to publish.
pub const GRACE: Duration = Duration::from_secs(2);
/// Rows sent per pass at most.
pub(crate) const BATCH: i64 = 1000;

/// One publisher pass; returns how many rows were sent and marked. Errors are
/// logged; unacknowledged rows stay unpublished for the next pass. First,
/// the queued tasks of tenants whose route changed at least `settle` ago
/// ([`crate::tenants::reroute_settle`]) are made unpublished again, once per
/// change, so they are sent to their new route's topic in this pass.
pub(crate) async fn publish_pending(
    routes: &Routes,
    pool: &PgPool,
    producer: &FutureProducer,
    settle: Duration,
) -> usize {
    match crate::store::tasks::reroute_changed(pool, settle).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(tasks = n, "publisher: re-routing the queued tasks of tenants whose route changed"),
        Err(e) => tracing::warn!(error = %e, "publisher: cannot re-route tenants whose route changed; next pass"),
    }
    match crate::store::tasks::fetch_unpublished(pool, GRACE, BATCH).await {
        Ok(rows) => publish_rows(routes, pool, producer, rows).await,
        Err(e) => {
            tracing::warn!(error = %e, "publisher: cannot read unpublished tasks");
            0
        }
    }
}

/// Sends `rows` to their routes' topics ([`crate::publish::send`]), marks the
/// acknowledged ones published and fails the refused ones ([`crate::publish::fail_refused`]).
pub async fn publish_rows(routes: &Routes, pool: &PgPool, producer: &FutureProducer, rows: Vec<Unpublished>) -> usize {
    if rows.is_empty() {
        return 0;
    }
    let sends = crate::publish::send(producer, routes, rows.into_iter().map(Into::into).collect()).await;
    for u in &sends.failed {
        tracing::debug!(id = %u.id, error = %u.error, "publisher: delivery failed");
    }
    if !sends.failed.is_empty() {
        tracing::warn!(
            failed = sends.failed.len(),
            "publisher: some tasks could not be sent to Kafka; retrying next pass"
        );
    }
    crate::publish::fail_refused(pool, &sends.refused).await;
    if let Err(e) = crate::store::tasks::mark_published(pool, &sends.acked).await {
        tracing::warn!(error = %e, "publisher: cannot mark tasks published; they will be sent again");
    }
    if !sends.acked.is_empty() {
        tracing::debug!(count = sends.acked.len(), "publisher: sent tasks");
    }
    sends.acked.len()
}
