//! Task events from PostgreSQL: one `LISTEN yadtq_task_events` connection per
//! gateway, and one shared read of each changed task for all of its waiters.
//! Every gateway hears every change, whichever process made it, so clients
//! can wait on any gateway of several.
//!
//! Waiters (long-polls, event streams) subscribe by task id. A change of a
//! watched id marks it for reading; one reader task reads the marked ids
//! (each once, however many waiters it has) and hands the row to that id's
//! waiters through a `watch` channel. So a change costs one PostgreSQL read
//! per gateway, not one per waiter (2,000 waiters on one task re-reading it on
//! each change cost about 900 transactions a second and exhausted the pool).
//! A new waiter's first read goes through the same reader, so waiters that
//! arrive together share it too. A round reads all the marked ids in one
//! statement (`tasks::get_many`, [`READ_BATCH`] ids at most).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use yadtq_core::model::Task;
use yadtq_core::names::TaskKey;
use yadtq_core::store::StoreError;

use crate::problem::ApiError;

/// Channel of task events; the services notify it after each change.
pub const CHANNEL: &str = yadtq_core::store::events::TASK_EVENTS_CHANNEL;

/// How often every watched task is read again even without an event (a
/// missed notification, e.g. one sent by a process that died between its
/// commit and its NOTIFY, must not hang its waiters). One read per watched
/// task id per period, shared by all of its waiters.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Most task ids one read statement asks for.
pub const READ_BATCH: usize = 1000;

/// Read statements a round runs at once (each takes a pool connection; the
/// rest of the pool stays for requests).
const READ_CONCURRENCY: usize = 2;

/// Pause before reading again ids whose read failed (PostgreSQL unreachable).
const READ_RETRY: Duration = Duration::from_secs(1);

/// Reads the task rows of some ids (those that exist): `tasks::get_many` in production.
type Reader = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, Rows> + Send + Sync>;
/// The rows one read statement found.
type Rows = Result<Vec<Task>, StoreError>;

/// Waiters by task id and the shared reader that feeds them. Cheap to clone.
#[derive(Clone)]
pub struct TaskEvents {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Wakes the reader when ids are marked.
    marked: Notify,
    read: Reader,
}

#[derive(Default)]
struct State {
    by_id: HashMap<String, Entry>,
    /// Ids to read in the next round, each at most once.
    marked: Vec<String>,
    /// Read rounds started so far: a snapshot from round r reflects the row
    /// as it was after round r started.
    rounds: u64,
}

/// One task id's waiters: how many, and the channel of its latest read.
struct Entry {
    tx: watch::Sender<Snapshot>,
    waiters: usize,
    marked: bool,
}

/// One shared read of a task.
#[derive(Clone)]
struct Snapshot {
    /// The read round that made it (0: none yet).
    round: u64,
    read: Read,
}

#[derive(Clone)]
enum Read {
    Pending,
    Found(Arc<Task>),
    Missing,
    /// The read failed; `transient` when PostgreSQL was unreachable (503).
    Failed {
        transient: bool,
    },
}

/// A waiter's registration for one task id; unregistered when dropped.
pub struct Subscription {
    events: TaskEvents,
    id: String,
    rx: watch::Receiver<Snapshot>,
    /// Rounds started before the subscription: their reads may predate it.
    since: u64,
}

impl TaskEvents {
    /// Events whose reads go to `pool`.
    fn new(pool: PgPool) -> Self {
        Self::with_reader(Arc::new(move |ids: Vec<String>| {
            let pool = pool.clone();
            async move {
                let keys: Vec<TaskKey> = ids.into_iter().map(TaskKey::from_stored).collect();
                let rows = yadtq_core::store::tasks::get_many(&pool, &keys).await?;
                Ok(rows.into_iter().map(|r| r.task).collect())
            }
            .boxed()
        }))
    }

    fn with_reader(read: Reader) -> Self {
        let inner = Arc::new(Inner { state: Mutex::default(), marked: Notify::new(), read });
        tokio::spawn(read_loop(Arc::downgrade(&inner)));
        tokio::spawn(recheck_loop(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// Registers for the task stored under `key` and asks for a fresh read
    /// of it, which [`Subscription::first`] returns (shared with the other
    /// waiters that subscribe meanwhile).
    pub fn subscribe(&self, key: &TaskKey) -> Subscription {
        let id = key.as_str();
        let mut state = self.inner.state.lock();
        let since = state.rounds;
        let entry = state.by_id.entry(id.to_string()).or_insert_with(|| Entry {
            tx: watch::channel(Snapshot { round: 0, read: Read::Pending }).0,
            waiters: 0,
            marked: false,
        });
        entry.waiters += 1;
        let rx = entry.tx.subscribe();
        state.mark(id);
        drop(state);
        self.inner.marked.notify_one();
        Subscription { events: self.clone(), id: id.to_string(), rx, since }
    }

    /// Task `id` changed: its waiters get it read again (none: nothing to do).
    pub fn changed(&self, id: &str) {
        if self.inner.state.lock().mark(id) {
            self.inner.marked.notify_one();
        }
    }

    /// Every watched task may have changed (the listener reconnected, or the
    /// periodic re-read is due): read each again once.
    pub fn changed_all(&self) {
        self.inner.mark_all();
    }

    /// Task ids with at least one waiter.
    #[cfg(test)]
    fn watched(&self) -> usize {
        self.inner.state.lock().by_id.len()
    }
}

impl Inner {
    fn mark_all(&self) {
        let mut state = self.state.lock();
        let ids: Vec<String> = state.by_id.keys().cloned().collect();
        let any = ids.iter().fold(false, |any, id| state.mark(id) | any);
        drop(state);
        if any {
            self.marked.notify_one();
        }
    }
}

impl State {
    /// Marks a watched id for the next round; true when it was newly marked.
    fn mark(&mut self, id: &str) -> bool {
        match self.by_id.get_mut(id) {
            Some(e) if !e.marked => {
                e.marked = true;
                self.marked.push(id.to_string());
                true
            }
            _ => false,
        }
    }
}

/// Reads the marked ids, round after round, and hands each row to its waiters.
/// Rounds run one at a time, so an id's snapshots arrive in read order.
async fn read_loop(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(events) = inner.upgrade() else { return };
        let (round, ids) = {
            let mut state = events.state.lock();
            let ids = std::mem::take(&mut state.marked);
            for id in &ids {
                if let Some(e) = state.by_id.get_mut(id) {
                    e.marked = false;
                }
            }
            if !ids.is_empty() {
                state.rounds += 1;
            }
            (state.rounds, ids)
        };
        if ids.is_empty() {
            // `notify_one` keeps its permit for a wake-up sent between the
            // take above and this wait. The timeout lets the loop see that
            // every `TaskEvents` is gone (the next upgrade fails).
            let _ = tokio::time::timeout(RECHECK, events.marked.notified()).await;
            continue;
        }
        let read = events.read.clone();
        let chunks: Vec<Vec<String>> = ids.chunks(READ_BATCH).map(<[String]>::to_vec).collect();
        let reads: Vec<(Vec<String>, Rows)> = futures::stream::iter(chunks)
            .map(|ids| {
                let read = read.clone();
                async move {
                    let r = read(ids.clone()).await;
                    (ids, r)
                }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut failed = false;
        {
            let mut state = events.state.lock();
            for (ids, r) in reads {
                match r {
                    Ok(tasks) => {
                        let mut found: HashMap<String, Arc<Task>> =
                            tasks.into_iter().map(|t| (t.key.to_string(), Arc::new(t))).collect();
                        for id in ids {
                            let read = found.remove(&id).map_or(Read::Missing, Read::Found);
                            if let Some(entry) = state.by_id.get(&id) {
                                entry.tx.send_replace(Snapshot { round, read });
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tasks = ids.len(), error = %e, "cannot read watched tasks; retrying");
                        failed = true;
                        let transient = e.is_transient();
                        for id in ids {
                            if let Some(entry) = state.by_id.get(&id) {
                                entry.tx.send_replace(Snapshot { round, read: Read::Failed { transient } });
                            }
                            state.mark(&id);
                        }
                    }
                }
            }
        }
        if failed {
            drop(events);
            tokio::time::sleep(READ_RETRY).await;
        }
    }
}

/// Marks every watched id every [`RECHECK`].
async fn recheck_loop(inner: std::sync::Weak<Inner>) {
    let mut tick = yadtq_core::periodic::every(RECHECK);
    tick.tick().await;
    loop {
        tick.tick().await;
        match inner.upgrade() {
            Some(events) => events.mark_all(),
            None => return,
        }
    }
}

impl Subscription {
    /// The task as read after the subscription: 404 when it does not exist,
    /// 503 when PostgreSQL is unreachable.
    pub async fn first(&mut self) -> Result<Arc<Task>, ApiError> {
        loop {
            let snap = self.rx.borrow_and_update().clone();
            if snap.round > self.since {
                return match snap.read {
                    Read::Found(task) => Ok(task),
                    Read::Missing => Err(self.missing()),
                    Read::Failed { transient: true } => {
                        Err(ApiError::unavailable("PostgreSQL is unavailable; retry later", 2))
                    }
                    Read::Failed { transient: false } | Read::Pending => Err(ApiError::new(
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        "internal database error",
                        None,
                    )),
                };
            }
            self.changed().await;
        }
    }

    /// The task's next read after the last one returned: `Err` (404) when it
    /// no longer exists. Failed reads are retried, not returned: a waiter
    /// waits through a PostgreSQL outage until its own deadline.
    pub async fn next(&mut self) -> Result<Arc<Task>, ApiError> {
        loop {
            self.changed().await;
            let read = self.rx.borrow_and_update().read.clone();
            match read {
                Read::Found(task) => return Ok(task),
                Read::Missing => return Err(self.missing()),
                Read::Failed { .. } | Read::Pending => {}
            }
        }
    }

    async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The entry (and its sender) lives while this subscription does.
            std::future::pending::<()>().await;
        }
    }

    fn missing(&self) -> ApiError {
        ApiError::not_found(format!("no task with id '{}'", self.id))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.events.inner.state.lock();
        if let Some(entry) = state.by_id.get_mut(&self.id) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                state.by_id.remove(&self.id);
            }
        }
    }
}

/// Starts the listener task that feeds the returned events, whose shared
/// reads go to `pool`. The listener reconnects on its own and has every
/// watched task read again when its connection dropped, since events may
/// have been missed meanwhile.
pub fn spawn(database_url: String, pool: PgPool) -> TaskEvents {
    let events = TaskEvents::new(pool);
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
            // again. Events sent meanwhile are lost: every watched task is read again.
            None => {
                tracing::warn!("task event listener lost its connection; reconnecting");
                events.changed_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Events whose reader answers "no such task" for `gone`, a task for any
    /// other id, and counts its read statements.
    fn counted() -> (TaskEvents, Arc<AtomicUsize>) {
        let reads = Arc::new(AtomicUsize::new(0));
        let count = reads.clone();
        let events = TaskEvents::with_reader(Arc::new(move |ids: Vec<String>| {
            count.fetch_add(1, Ordering::SeqCst);
            async move { Ok(ids.into_iter().filter(|id| id != "gone").map(task).collect()) }.boxed()
        }));
        (events, reads)
    }

    fn task(id: String) -> Task {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_string()).expect("json");
        Task {
            id: yadtq_core::names::TaskId::parse(id.clone()).expect("a task id"),
            key: TaskKey::from_stored(id),
            task: "echo".into(),
            args: raw("[]"),
            kwargs: raw("{}"),
            queue: "default".into(),
            status: yadtq_core::model::TaskStatus::Queued,
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

    #[tokio::test]
    async fn waiters_that_subscribe_together_share_one_read_and_each_change_is_read_once() {
        let (events, reads) = counted();
        let mut subs: Vec<Subscription> =
            (0..100).map(|_| events.subscribe(&TaskKey::from_stored("a".into()))).collect();
        for s in &mut subs {
            assert_eq!(s.first().await.expect("found").id, "a");
        }
        let first_reads = reads.load(Ordering::SeqCst);
        assert!(first_reads <= 2, "100 waiters subscribing at once: {first_reads} reads");
        events.changed("a");
        for s in &mut subs {
            s.next().await.expect("found");
        }
        assert_eq!(reads.load(Ordering::SeqCst), first_reads + 1, "one change, one read for 100 waiters");
        events.changed("nobody-waits");
        assert_eq!(events.watched(), 1);
        drop(subs);
        assert_eq!(events.watched(), 0, "no waiter left: nothing kept for the id");
    }

    #[tokio::test]
    async fn a_missing_task_is_a_404() {
        let (events, _) = counted();
        let mut s = events.subscribe(&TaskKey::from_stored("gone".into()));
        assert_eq!(s.first().await.expect_err("no such task").status(), axum::http::StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn changes_of_many_tasks_are_read_in_one_statement() {
        let (events, reads) = counted();
        let mut subs: Vec<Subscription> =
            (0..50).map(|i| events.subscribe(&TaskKey::from_stored(format!("t{i}")))).collect();
        for s in &mut subs {
            s.first().await.expect("found");
        }
        let before = reads.load(Ordering::SeqCst);
        (0..50).for_each(|i| events.changed(&format!("t{i}")));
        for s in &mut subs {
            s.next().await.expect("found");
        }
        assert_eq!(reads.load(Ordering::SeqCst), before + 1, "50 changed tasks, one read");
    }

    #[tokio::test(start_paused = true)]
    async fn watched_tasks_are_read_again_periodically_once_per_id() {
        let (events, reads) = counted();
        let mut a1 = events.subscribe(&TaskKey::from_stored("a".into()));
        let mut a2 = events.subscribe(&TaskKey::from_stored("a".into()));
        a1.first().await.expect("found");
        a2.first().await.expect("found");
        let before = reads.load(Ordering::SeqCst);
        a1.next().await.expect("the periodic read");
        a2.next().await.expect("the periodic read");
        assert_eq!(reads.load(Ordering::SeqCst), before + 1, "one periodic read for both waiters");
    }
}
