//! Sending new (or retried) tasks to Kafka from the gateway: the envelopes are
//! queued at once (one producer batch) and the caller waits at most the publish
//! wait (none by default). The work (sending, marking the rows published
//! when acked, failing the ones Kafka refuses for the record itself) goes on
//! in the background past that; anything else not acked is left to the
//! publisher. Topics exist already: the gateway creates its declared queues'
//! topics at start, never because of a request.

use yadtq_core::envelope::{Envelope, ENVELOPE_VERSION};
use yadtq_core::kafka::Delivery;
use yadtq_core::model::{Task, TaskStatus};

use crate::state::AppState;

/// Publishes the `queued` tasks among `tasks` (scheduled ones wait for the scheduler).
pub async fn publish(state: &AppState, tasks: &[&Task]) {
    for t in tasks {
        // Queues are the declared ones: a bounded label.
        metrics::counter!(yadtq_core::metrics::TASKS_SUBMITTED, "queue" => t.queue.clone()).increment(1);
    }
    let envelopes: Vec<Envelope> = tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Queued)
        .map(|t| Envelope {
            v: ENVELOPE_VERSION,
            id: t.id.clone(),
            task: t.task.clone(),
            args: t.args.clone(),
            kwargs: t.kwargs.clone(),
            queue: t.queue.clone(),
            attempt: t.attempts,
            submitted_at: t.created_at,
        })
        .collect();
    if envelopes.is_empty() {
        return;
    }
    let (names, producer, marker, pool) =
        (state.cfg.common.names(), state.producer.clone(), state.marker.clone(), state.pool.clone());
    let delivery = tokio::spawn(async move {
        let producer = &producer;
        let sends = envelopes.iter().map(|env| {
            let topic = names.queue_topic(&env.queue);
            async move { (env, yadtq_core::kafka::deliver(producer, &topic, env).await) }
        });
        let mut refused = Vec::new();
        for (env, result) in futures::future::join_all(sends).await {
            match result {
                Delivery::Acked => marker.send(env.id.clone(), env.attempt),
                Delivery::Failed(e) => {
                    tracing::warn!(id = %env.id, error = %e, "task not sent to Kafka; the publisher will send it")
                }
                Delivery::Refused(error) => refused.push((env.id.clone(), env.attempt, error)),
            }
        }
        // Classified as the publisher does: a record refused for itself fails its task.
        yadtq_core::maintenance::fail_refused(&pool, &refused).await;
    });
    // With no wait (the default) the delivery task just runs on, detached.
    let wait = state.cfg.publish_wait();
    if !wait.is_zero() && tokio::time::timeout(wait, delivery).await.is_err() {
        tracing::debug!("no broker ack within the publish wait; answering anyway");
    }
}
