//! Sending new (or retried) tasks to Kafka from the gateway: the envelopes are
//! queued at once (one producer batch) and the caller waits at most the publish
//! wait (none by default). The work (sending, marking the rows published
//! when acked, failing the ones Kafka refuses for the record itself) goes on
//! in the background past that; anything else not acked is left to the
//! publisher. Topics exist already: the gateway creates its declared queues'
//! topics (and their dedicated tenants') at start, never because of a request.

use yadtq_core::envelope::Envelope;
use yadtq_core::model::{Task, TaskStatus};

use crate::state::AppState;

/// Sends workflow nodes a fan-in released to `queued` (their rows are
/// committed) in the background: marks the acknowledged ones published and
/// fails the refused ones; the publisher sends what this does not.
pub fn publish_released(state: &AppState, rows: Vec<yadtq_core::store::tasks::Unpublished>) {
    if rows.is_empty() {
        return;
    }
    let (routes, producer, pool) = (state.routes.clone(), state.producer.clone(), state.pool.clone());
    tokio::spawn(async move { yadtq_core::maintenance::publish_rows(&routes, &pool, &producer, rows).await });
}

/// Publishes the `queued` tasks among `tasks` (scheduled ones wait for the
/// scheduler) through the one publish path ([`yadtq_core::publish::send`]);
/// acknowledged ones go to the marker, refused ones fail.
pub async fn publish(state: &AppState, tasks: &[&Task]) {
    for t in tasks {
        // Queues are the declared ones: a bounded label.
        metrics::counter!(yadtq_core::metrics::TASKS_SUBMITTED, "queue" => t.queue.clone()).increment(1);
    }
    let envelopes: Vec<Envelope> =
        tasks.iter().filter(|t| t.status == TaskStatus::Queued).map(|t| Envelope::from(*t)).collect();
    if envelopes.is_empty() {
        return;
    }
    let (routes, producer, marker, pool) =
        (state.routes.clone(), state.producer.clone(), state.marker.clone(), state.pool.clone());
    let delivery = tokio::spawn(async move {
        let sends = yadtq_core::publish::send(&producer, &routes, envelopes).await;
        for sent in sends.acked {
            marker.send(sent);
        }
        for u in &sends.failed {
            tracing::warn!(id = %u.id, error = %u.error, "task not sent to Kafka; the publisher will send it");
        }
        yadtq_core::publish::fail_refused(&pool, &sends.refused).await;
    });
    // With no wait (the default) the delivery task just runs on, detached.
    let wait = state.cfg.publish_wait();
    if !wait.is_zero() && tokio::time::timeout(wait, delivery).await.is_err() {
        tracing::debug!("no broker ack within the publish wait; answering anyway");
    }
}
