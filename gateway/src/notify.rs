//! Task events from PostgreSQL: one `LISTEN yadtq_task_events` connection per
//! gateway, fanned out to long-polls and event streams through a broadcast
//! channel of task ids. Every gateway hears every change, whichever process
//! made it, so clients can wait on any gateway of several.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// Channel of task events; the services notify it after each change.
pub const CHANNEL: &str = yadtq_core::store::TASK_EVENTS_CHANNEL;

/// Starts the listener task; returns the sender subscribers clone receivers from.
/// The listener reconnects on its own; events missed meanwhile are covered by
/// the waiters' periodic re-check.
pub fn spawn(database_url: String) -> broadcast::Sender<String> {
    let (tx, _) = broadcast::channel(4096);
    let sender = tx.clone();
    tokio::spawn(async move {
        loop {
            match listen(&database_url, &tx).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "task event listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    sender
}

async fn listen(database_url: &str, tx: &broadcast::Sender<String>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let n = listener.recv().await?;
        // One event per task id of the payload. No receivers is fine: nobody is waiting.
        for id in n.payload().split(',') {
            let _ = tx.send(id.to_string());
        }
    }
}

/// How often a waiter re-reads the task even without an event (a missed
/// notification during a listener reconnect must not hang it).
pub const RECHECK: Duration = Duration::from_secs(2);

/// Waits until an event for `id` arrives, `RECHECK` passes, or the receiver lags.
pub async fn next_event_for(rx: &mut broadcast::Receiver<String>, id: &str) {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(got) if got == id => return,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    };
    let _ = tokio::time::timeout(RECHECK, wait).await;
}
