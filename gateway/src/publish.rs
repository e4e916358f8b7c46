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

/// The envelopes of the `queued` tasks among `tasks`: never a `held` one
/// (a limit's release queues it under the buckets' locks, then it is sent),
/// nor a `scheduled` or `waiting` one.
fn sendable(tasks: &[&Task]) -> Vec<Envelope> {
    tasks.iter().filter(|t| t.status == TaskStatus::Queued).map(|t| Envelope::from(*t)).collect()
}

/// Publishes the `queued` tasks among `tasks` (scheduled ones wait for the
/// scheduler) through the one publish path ([`yadtq_core::publish::send`]);
/// acknowledged ones go to the marker, refused ones fail.
pub async fn publish(state: &AppState, tasks: &[&Task]) {
    for t in tasks {
        // Queues are the declared ones: a bounded label.
        metrics::counter!(yadtq_core::metrics::TASKS_SUBMITTED, "queue" => t.queue.clone()).increment(1);
    }
    let envelopes = sendable(tasks);
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

#[cfg(test)]
mod tests {
    use super::*;
    use yadtq_core::names::{TaskId, TaskKey};

    fn task(id: &str, status: TaskStatus) -> Task {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_string()).expect("json");
        Task {
            id: TaskId::parse(id).expect("a task id"),
            key: TaskKey::from_stored(id.to_string()),
            task: "echo".into(),
            args: raw("[]"),
            kwargs: raw("{}"),
            queue: "default".into(),
            status,
            result: None,
            error: None,
            attempts: 0,
            max_retries: 3,
            timeout: 300.0,
            run_at: None,
            progress: None,
            cancel_requested_at: None,
            worker_id: None,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            trace_id: None,
            schedule_id: None,
            scheduled_for: None,
            workflow_id: None,
            parents: None,
            limits: None,
            limited: false,
        }
    }

    #[test]
    fn only_queued_tasks_are_sent_never_held_ones() {
        let tasks = [
            task("q", TaskStatus::Queued),
            task("h", TaskStatus::Held),
            task("s", TaskStatus::Scheduled),
            task("w", TaskStatus::Waiting),
            task("o", TaskStatus::Other("suspended".into())),
        ];
        let refs: Vec<&Task> = tasks.iter().collect();
        let sent: Vec<String> = sendable(&refs).iter().map(|e| e.id.to_string()).collect();
        assert_eq!(sent, ["q"]);
    }
}
