//! Marks acknowledged tasks as published, in batches, [`DELAY`] after the
//! broker's ack. By then a worker has usually claimed the task, and the claim
//! stamps `published_at` itself, so the mark's UPDATE finds nothing to do and
//! the row gets one version fewer (marking at the ack would be a fourth write
//! of every task, whose row locks make claims wait). A task still waiting in
//! Kafka (a backlog, no worker) is marked then, well inside the publisher's
//! [`GRACE`] for new tasks, so it is not sent twice. (A task sent again by
//! `POST /tasks/{id}/retry` has no grace: the publisher may send it once more
//! before its mark lands, which the claim absorbs.) Acks that fall due within
//! [`LINGER`] share one UPDATE.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use yadtq_core::maintenance::PUBLISH_GRACE as GRACE;
use yadtq_core::store::tasks::Sent;

/// How long after its ack a task is marked (well under [`GRACE`]).
pub const DELAY: Duration = Duration::from_millis(500);
/// Least time between two UPDATEs: acks falling due meanwhile share the next one.
const LINGER: Duration = Duration::from_millis(5);
/// Ids written per UPDATE at most.
const MAX_BATCH: usize = 1000;

const _: () = assert!(DELAY.as_millis() * 2 < GRACE.as_millis(), "marks must land before the publisher resends");

/// Takes acknowledged task ids (`Marker::send`); cheap to clone.
#[derive(Clone)]
pub struct Marker {
    tx: mpsc::UnboundedSender<(Instant, Sent)>,
}

impl Marker {
    /// Queues a record the broker just acknowledged, to be marked after [`DELAY`].
    pub fn send(&self, sent: Sent) {
        let _ = self.tx.send((Instant::now() + DELAY, sent));
    }
}

/// Starts the writer. It ends once every [`Marker`] clone is dropped and what
/// they queued is written (the returned handle; the gateway awaits it when it
/// stops, so a clean stop leaves nothing for the publisher to resend). A failed
/// write is logged; the publisher then sends those tasks again (harmless: the
/// claim absorbs duplicates).
pub fn spawn(pool: PgPool) -> (Marker, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Sent)>();
    let writer = tokio::spawn(async move {
        let mut carried = None;
        let mut open = true;
        loop {
            let first = match carried.take() {
                Some(next) => next,
                None => match rx.recv().await {
                    Some(next) => next,
                    None => return,
                },
            };
            // Once the gateway is stopping and every sender is gone (seen as
            // Disconnected below), the rest is written without waiting.
            let (due, sent) = first;
            if open {
                tokio::time::sleep_until(due).await;
            }
            let now = Instant::now();
            let mut batch = vec![sent];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok((due, sent)) if due <= now || !open => batch.push(sent),
                    Ok(later) => {
                        carried = Some(later);
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if let Err(e) = yadtq_core::store::tasks::mark_published(&pool, &batch).await {
                tracing::warn!(error = %e, count = batch.len(), "cannot mark tasks published; the publisher will resend them");
            }
            if open {
                tokio::time::sleep(LINGER).await;
            }
        }
    });
    (Marker { tx }, writer)
}
