//! Marks acknowledged tasks as published in batches: acks from many concurrent
//! submissions are gathered for a few milliseconds and written with one UPDATE,
//! instead of one UPDATE per task.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;

/// Longest a task id waits before its batch is written.
const LINGER: Duration = Duration::from_millis(5);
/// Ids written per UPDATE at most.
const MAX_BATCH: usize = 1000;

/// Sender of acknowledged task ids; dropping every clone stops the writer.
pub type Marker = mpsc::UnboundedSender<String>;

/// Starts the writer task. A failed write is logged; the publisher then sends
/// those tasks again (harmless: the claim absorbs duplicates).
pub fn spawn(pool: PgPool) -> Marker {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.push(first);
            let deadline = tokio::time::Instant::now() + LINGER;
            while batch.len() < MAX_BATCH {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(id)) => batch.push(id),
                    Ok(None) | Err(_) => break,
                }
            }
            if let Err(e) = yadtq_core::store::mark_published(&pool, &batch).await {
                tracing::warn!(error = %e, count = batch.len(), "cannot mark tasks published; the publisher will resend them");
            }
            batch.clear();
        }
    });
    tx
}
