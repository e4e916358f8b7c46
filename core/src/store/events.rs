//! Task-change notifications: after a change commits, the ids of the tasks
//! whose status or progress changed go out on [`TASK_EVENTS_CHANNEL`], and
//! every gateway's listener wakes that task's waiters.

use sqlx::PgPool;

/// Channel of task events (`LISTEN yadtq_task_events`). Each payload lists the
/// ids of tasks whose status or progress changed, comma separated (task ids
/// never contain commas); listeners re-read the rows.
pub const TASK_EVENTS_CHANNEL: &str = "yadtq_task_events";
/// Longest event payload sent (PostgreSQL refuses payloads of 8000 bytes and more).
const EVENT_PAYLOAD_MAX: usize = 7900;

/// Splits `ids` into comma-separated payloads of at most `max` bytes each.
fn event_payloads<S: AsRef<str>>(ids: &[S], max: usize) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        let id = id.as_ref();
        if !current.is_empty() && current.len() + 1 + id.len() > max {
            payloads.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(id);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// Tells every listening gateway that these tasks changed, in the background,
/// after the change has committed. The NOTIFY runs in a transaction of its own
/// that writes nothing: PostgreSQL holds a cluster-wide lock from a notifying
/// transaction's commit until it ends, so a NOTIFY inside a write transaction
/// would serialise every writer's commit flush. Best effort: a lost event
/// only delays a waiter until its periodic re-read.
pub(crate) fn notify_changed(pool: &PgPool, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        let payloads = event_payloads(&ids, EVENT_PAYLOAD_MAX);
        let sent = sqlx::query!("SELECT pg_notify($1, p) FROM UNNEST($2::text[]) AS p", TASK_EVENTS_CHANNEL, &payloads)
            .fetch_all(&pool)
            .await;
        if let Err(e) = sent {
            tracing::debug!(error = %e, tasks = ids.len(), "task events not sent");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::event_payloads;

    #[test]
    fn event_payloads_stay_under_the_limit_and_keep_every_id() {
        let ids: Vec<String> = (0..1000).map(|i| format!("task-{i:04}")).collect();
        let payloads = event_payloads(&ids, 100);
        assert!(payloads.iter().all(|p| p.len() <= 100));
        let back: Vec<&str> = payloads.iter().flat_map(|p| p.split(',')).collect();
        assert_eq!(back, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(event_payloads::<String>(&[], 100).is_empty());
        assert_eq!(event_payloads(&["a", "b"], 100), vec!["a,b"]);
    }
}
