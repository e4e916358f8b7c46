//! The publisher: sends `queued` rows that have no `published_at` (the gateway's
//! ack wait ran out, Kafka was down, or the rescuer requeued them), in
//! submission order, and marks the ones the broker acknowledged.

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::envelope::{Envelope, ENVELOPE_VERSION};

/// Rows younger than this are still the accepting gateway's to publish.
pub const GRACE: Duration = Duration::from_secs(2);
/// Rows sent per pass at most.
pub const BATCH: i64 = 1000;

/// One publisher pass; returns how many rows were sent and marked. Errors are
/// logged; unacknowledged rows stay unpublished for the next pass.
pub async fn publish_pending(pool: &PgPool, producer: &FutureProducer, topic: &str) -> usize {
    let rows = match crate::store::fetch_unpublished(pool, GRACE, BATCH).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "publisher: cannot read unpublished tasks");
            return 0;
        }
    };
    if rows.is_empty() {
        return 0;
    }
    let envelopes: Vec<Envelope> = rows
        .into_iter()
        .map(|r| Envelope {
            v: ENVELOPE_VERSION,
            id: r.id,
            task: r.name,
            args: r.args,
            kwargs: r.kwargs,
            queue: r.queue,
            attempt: r.attempts,
            submitted_at: r.created_at,
        })
        .collect();
    // All sends are queued at once (one producer batch); the idempotent producer
    // keeps their order per partition.
    let results =
        futures::future::join_all(envelopes.iter().map(|e| crate::kafka::send_envelope(producer, topic, e))).await;
    let mut sent = Vec::new();
    let mut failed = 0;
    for (env, result) in envelopes.into_iter().zip(results) {
        match result {
            Ok(()) => sent.push(env.id),
            Err(e) => {
                failed += 1;
                tracing::debug!(id = %env.id, error = %e, "publisher: delivery failed");
            }
        }
    }
    if failed > 0 {
        tracing::warn!(failed, "publisher: some tasks could not be sent to Kafka; retrying next pass");
    }
    if let Err(e) = crate::store::mark_published(pool, &sent).await {
        tracing::warn!(error = %e, "publisher: cannot mark tasks published; they will be sent again");
    }
    if !sent.is_empty() {
        tracing::info!(count = sent.len(), "publisher: sent unpublished tasks");
    }
    sent.len()
}
