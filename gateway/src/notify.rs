//! Task events from PostgreSQL: one `LISTEN yadtq_task_events` connection per
//! gateway, fanned out to the long-polls and event streams waiting on each task
//! id. Every gateway hears every change, whichever process made it, so clients
//! can wait on any gateway of several.
//!
//! Waiters register by task id, so an event costs one map lookup however many
//! long-polls and streams are open (a shared channel of every id made each
//! waiter look at every event: waiters × events per second).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::Notify;

/// Channel of task events; the services notify it after each change.
pub const CHANNEL: &str = yadtq_core::store::events::TASK_EVENTS_CHANNEL;

/// How often a waiter re-reads the task even without an event (a missed
/// notification, e.g. one sent by a process that died between its commit and
/// its NOTIFY, must not hang it).
pub const RECHECK: Duration = Duration::from_secs(2);

/// Waiters by task id. Cheap to clone (one shared map).
#[derive(Clone, Default)]
pub struct TaskEvents {
    by_id: Arc<Mutex<HashMap<String, Entry>>>,
}

/// One task id's slot and how many subscriptions hold it (the entry goes
/// with the last one).
struct Entry {
    slot: Arc<Slot>,
    waiters: usize,
}

/// One task id's waiters: a change counter and the wake-up for it.
#[derive(Default)]
struct Slot {
    changes: AtomicU64,
    notify: Notify,
}

/// A waiter's registration for one task id; unregistered when dropped.
pub struct Subscription {
    events: TaskEvents,
    id: String,
    slot: Arc<Slot>,
    seen: u64,
}

impl TaskEvents {
    /// Registers for changes of task `id`. Subscribe before reading the task,
    /// so a change between the read and the wait is not missed.
    pub fn subscribe(&self, id: &str) -> Subscription {
        let mut by_id = self.by_id.lock().expect("task events lock");
        let entry = by_id.entry(id.to_string()).or_insert_with(|| Entry { slot: Arc::default(), waiters: 0 });
        entry.waiters += 1;
        let slot = entry.slot.clone();
        let seen = slot.changes.load(Ordering::SeqCst);
        Subscription { events: self.clone(), id: id.to_string(), slot, seen }
    }

    /// Wakes the waiters of task `id` (none: nothing to do).
    pub fn changed(&self, id: &str) {
        let slot = self.by_id.lock().expect("task events lock").get(id).map(|e| e.slot.clone());
        if let Some(slot) = slot {
            slot.wake();
        }
    }

    /// Wakes every waiter: events may have been missed (listener reconnected).
    pub fn changed_all(&self) {
        let slots: Vec<Arc<Slot>> =
            self.by_id.lock().expect("task events lock").values().map(|e| e.slot.clone()).collect();
        for slot in slots {
            slot.wake();
        }
    }

    /// Task ids with at least one waiter.
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.by_id.lock().expect("task events lock").len()
    }
}

impl Slot {
    fn wake(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

impl Subscription {
    /// Waits until the task changes after the last call (or the subscription),
    /// or `RECHECK` passes, whichever is first.
    pub async fn next(&mut self) {
        let changed = async {
            loop {
                let woken = self.slot.notify.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                let now = self.slot.changes.load(Ordering::SeqCst);
                if now != self.seen {
                    self.seen = now;
                    return;
                }
                woken.await;
            }
        };
        let _ = tokio::time::timeout(RECHECK, changed).await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut by_id = self.events.by_id.lock().expect("task events lock");
        if let Some(entry) = by_id.get_mut(&self.id) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                by_id.remove(&self.id);
            }
        }
    }
}

/// Starts the listener task that feeds `events`. The listener reconnects on its
/// own and wakes every waiter when its connection dropped, since events may
/// have been missed meanwhile.
pub fn spawn(database_url: String) -> TaskEvents {
    let events = TaskEvents::default();
    let feed = events.clone();
    tokio::spawn(async move {
        loop {
            match listen(&database_url, &feed).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "task event listener failed; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    events
}

async fn listen(database_url: &str, events: &TaskEvents) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    events.changed_all();
    loop {
        match listener.try_recv().await? {
            // The payload lists the ids of one batch, comma-separated.
            Some(n) => n.payload().split(',').for_each(|id| events.changed(id)),
            // The connection dropped; the next call reconnects and listens
            // again. Events sent meanwhile are lost: everyone re-reads.
            None => {
                tracing::warn!("task event listener lost its connection; reconnecting");
                events.changed_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// True when `next` returns before the re-check time (the clock is paused,
    /// so only a wake-up can end it sooner).
    async fn woken(sub: &mut Subscription) -> bool {
        let start = tokio::time::Instant::now();
        sub.next().await;
        start.elapsed() < RECHECK
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_wakes_only_that_ids_waiters() {
        let events = TaskEvents::default();
        let mut a = events.subscribe("a");
        let mut b = events.subscribe("b");
        events.changed("a");
        assert!(woken(&mut a).await, "a's change wakes a");
        assert!(!woken(&mut b).await, "a's change leaves b waiting until the re-check");
        events.changed("zzz");
        assert!(!woken(&mut a).await, "an id nobody waits on wakes nobody");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_before_the_wait_is_not_missed() {
        let events = TaskEvents::default();
        let mut a = events.subscribe("a");
        events.changed("a"); // between the read and the wait
        assert!(woken(&mut a).await);
        let mut again = events.subscribe("a");
        events.changed_all();
        assert!(woken(&mut again).await, "a reconnect wakes everyone");
    }

    #[tokio::test(start_paused = true)]
    async fn every_waiter_of_an_id_is_woken_and_dropping_unregisters() {
        let events = TaskEvents::default();
        let mut one = events.subscribe("a");
        let mut two = events.subscribe("a");
        assert_eq!(events.watched(), 1);
        events.changed("a");
        assert!(woken(&mut one).await && woken(&mut two).await);
        drop(one);
        assert_eq!(events.watched(), 1, "another waiter still holds the id");
        drop(two);
        assert_eq!(events.watched(), 0, "no waiter left: nothing kept for the id");
    }
}
