//! Sending new (or retried) tasks to Kafka from the gateway: the envelopes are
//! queued at once (one producer batch) and the caller waits at most the publish
//! wait (none by default). The work (creating a new queue's topic, sending,
//! marking the rows published when acked) goes on in the background past
//! that; anything not acked is left to the publisher.

use std::sync::Arc;
use std::time::Duration;

use yadtq_core::envelope::{Envelope, ENVELOPE_VERSION};
use yadtq_core::model::{Task, TaskStatus};

use crate::state::AppState;

/// How long creating a new queue's topic may take in the background.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes the `queued` tasks among `tasks` (scheduled ones wait for the scheduler).
pub async fn publish(state: &AppState, tasks: &[&Task]) {
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
    let (cfg, producer, topics, marker) =
        (state.cfg.clone(), state.producer.clone(), Arc::clone(&state.topics), state.marker.clone());
    let delivery = tokio::spawn(async move {
        let mut sends = Vec::with_capacity(envelopes.len());
        let producer = &producer;
        for env in &envelopes {
            match topics.ensure(&cfg.common, &env.queue, TOPIC_TIMEOUT).await {
                Ok(topic) => {
                    sends.push(async move { (env, yadtq_core::kafka::send_envelope(producer, &topic, env).await) })
                }
                Err(e) => {
                    tracing::warn!(queue = %env.queue, error = %e, "topic not ready; the publisher will send the task")
                }
            }
        }
        for (env, result) in futures::future::join_all(sends).await {
            match result {
                Ok(()) => marker.send(env.id.clone(), env.attempt),
                Err(e) => {
                    tracing::warn!(id = %env.id, error = %e, "task not sent to Kafka; the publisher will send it")
                }
            }
        }
    });
    // With no wait (the default) the delivery task just runs on, detached.
    let wait = state.cfg.publish_wait();
    if !wait.is_zero() && tokio::time::timeout(wait, delivery).await.is_err() {
        tracing::debug!("no broker ack within the publish wait; answering anyway");
    }
}
