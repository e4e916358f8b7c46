//! Sending new (or retried) tasks to Kafka from the gateway: all envelopes are
//! queued at once (one producer batch) and the caller waits at most the
//! publish wait for the acks. Deliveries go on in the background and mark the
//! rows published when acked; anything not acked is left to the publisher.

use yadtq_core::envelope::{Envelope, ENVELOPE_VERSION};
use yadtq_core::model::{Task, TaskStatus};

use crate::state::AppState;

/// Publishes the `queued` tasks among `tasks` (scheduled ones wait for the scheduler).
pub async fn publish(state: &AppState, tasks: &[&Task]) {
    let mut envelopes = Vec::new();
    for t in tasks.iter().filter(|t| t.status == TaskStatus::Queued) {
        let topic = match state.topics.ensure(&state.cfg.common, &t.queue, state.cfg.publish_wait()).await {
            Ok(topic) => topic,
            Err(e) => {
                tracing::warn!(queue = %t.queue, error = %e, "topic not ready; the publisher will send the task");
                continue;
            }
        };
        let env = Envelope {
            v: ENVELOPE_VERSION,
            id: t.id.clone(),
            task: t.task.clone(),
            args: t.args.clone(),
            kwargs: t.kwargs.clone(),
            queue: t.queue.clone(),
            attempt: t.attempts,
            submitted_at: t.created_at,
        };
        envelopes.push((topic, env));
    }
    if envelopes.is_empty() {
        return;
    }
    let (producer, marker) = (state.producer.clone(), state.marker.clone());
    let delivery = tokio::spawn(async move {
        let sends = envelopes.iter().map(|(topic, env)| yadtq_core::kafka::send_envelope(&producer, topic, env));
        let results = futures::future::join_all(sends).await;
        for ((_, env), r) in envelopes.into_iter().zip(results) {
            match r {
                Ok(()) => {
                    let _ = marker.send(env.id);
                }
                Err(e) => {
                    tracing::warn!(id = %env.id, error = %e, "task not sent to Kafka; the publisher will send it")
                }
            }
        }
    });
    if tokio::time::timeout(state.cfg.publish_wait(), delivery).await.is_err() {
        tracing::debug!("no broker ack within the publish wait; answering anyway");
    }
}
