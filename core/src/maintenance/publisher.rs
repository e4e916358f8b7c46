//! The publisher: sends `queued` rows that have no `published_at` (the gateway's
//! ack wait ran out, Kafka was down, the rescuer requeued them, or the
//! scheduler promoted them), in submission order, marks the ones the broker
//! acknowledged, and fails the ones it refused for the record itself (too
//! large, invalid: [`crate::kafka::refusal`]); everything else waits for the
//! next pass.

use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;

use crate::config::CommonConfig;
use crate::envelope::{Envelope, ENVELOPE_VERSION};
use crate::kafka::Delivery;
use crate::store::Unpublished;

/// Rows younger than this are still the accepting gateway's to publish.
pub const GRACE: Duration = Duration::from_secs(2);
/// Rows sent per pass at most.
pub const BATCH: i64 = 1000;

/// One publisher pass; returns how many rows were sent and marked. Errors are
/// logged; unacknowledged rows stay unpublished for the next pass.
pub async fn publish_pending(cfg: &CommonConfig, pool: &PgPool, producer: &FutureProducer) -> usize {
    match crate::store::fetch_unpublished(pool, GRACE, BATCH).await {
        Ok(rows) => publish_rows(cfg, pool, producer, rows).await,
        Err(e) => {
            tracing::warn!(error = %e, "publisher: cannot read unpublished tasks");
            0
        }
    }
}

/// Sends `rows` (one producer batch; the idempotent producer keeps their order
/// per partition), marks the acknowledged ones published and fails the
/// refused ones ([`fail_refused`]).
pub async fn publish_rows(
    cfg: &CommonConfig,
    pool: &PgPool,
    producer: &FutureProducer,
    rows: Vec<Unpublished>,
) -> usize {
    if rows.is_empty() {
        return 0;
    }
    let names = cfg.names();
    let mut batch = Vec::with_capacity(rows.len());
    for r in rows {
        // Topics exist for the declared queues (created at start); a row of a
        // queue without one (declared no more) fails to send and waits.
        let topic = names.queue_topic(&r.queue);
        let env = Envelope {
            v: ENVELOPE_VERSION,
            id: r.id,
            task: r.name,
            args: r.args,
            kwargs: r.kwargs,
            queue: r.queue,
            attempt: r.attempts,
            submitted_at: r.created_at,
        };
        batch.push((topic, env));
    }
    let results = futures::future::join_all(batch.iter().map(|(t, e)| crate::kafka::deliver(producer, t, e))).await;
    let (mut sent, mut refused) = (Vec::new(), Vec::new());
    let mut failed = 0;
    for ((_, env), result) in batch.into_iter().zip(results) {
        match result {
            Delivery::Acked => sent.push((env.id, env.attempt)),
            Delivery::Failed(e) => {
                failed += 1;
                tracing::debug!(id = %env.id, error = %e, "publisher: delivery failed");
            }
            Delivery::Refused(error) => refused.push((env.id, env.attempt, error)),
        }
    }
    if failed > 0 {
        tracing::warn!(failed, "publisher: some tasks could not be sent to Kafka; retrying next pass");
    }
    fail_refused(pool, &refused).await;
    if let Err(e) = crate::store::mark_published(pool, &sent).await {
        tracing::warn!(error = %e, "publisher: cannot mark tasks published; they will be sent again");
    }
    if !sent.is_empty() {
        tracing::debug!(count = sent.len(), "publisher: sent tasks");
    }
    sent.len()
}

/// Fails the tasks whose records Kafka refused for themselves
/// ([`Delivery::Refused`]), logging each; a database error leaves them
/// queued and the next send fails them again.
pub async fn fail_refused(pool: &PgPool, refused: &[(String, i32, crate::model::TaskError)]) {
    for (id, _, error) in refused {
        tracing::error!(%id, kind = %error.kind, error = %error.message, "task can never be sent to Kafka: failing it");
    }
    if let Err(e) = crate::store::fail_unsendable(pool, refused).await {
        tracing::warn!(error = %e, "cannot fail tasks Kafka refused; they will be sent (and refused) again");
    }
}
