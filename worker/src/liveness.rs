//! Heartbeats and self-fencing (design guarantees 3 and 4). Heartbeats run on
//! their own OS thread, runtime and PostgreSQL connection, so busy handlers or
//! a saturated pool never delay them. A worker that has not heartbeated for
//! (almost) the dead-after threshold fences itself: it aborts running handlers
//! and claims nothing until a heartbeat succeeds again, so by the time the
//! rescuer requeues its tasks they no longer run there.
//!
//! A paused process (SIGSTOP, a VM freeze, a stall) resumes with every thread
//! at once, and its first heartbeat may well succeed. So the gap is looked for
//! three ways, each of which fences on its own: a watchdog thread reading
//! `CLOCK_BOOTTIME` every [`WATCHDOG_TICK`] (it counts suspended time, unlike
//! `Instant`), the database-clock gap each heartbeat returns, and the rows of
//! the running attempts (one the rescuer took over is aborted at once).

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use yadtq_core::model::WorkerState;
use yadtq_core::store::attempts::{self, AttemptSignal, RunningAttempt};
use yadtq_core::store::workers::{self, Beat, Partitions, WorkerCounts};
use yadtq_core::store::{self, StoreError};

/// How often the watchdog reads the clock: the bound on how long a resumed
/// worker's stale handlers run before the fence aborts them (plus the time
/// the abort takes to reach them).
pub const WATCHDOG_TICK: Duration = Duration::from_millis(10);

/// Time since boot on `CLOCK_BOOTTIME`, which keeps counting while the system
/// is suspended (Rust's `Instant`, on `CLOCK_MONOTONIC`, does not).
fn boottime() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME).map(Duration::from).expect("CLOCK_BOOTTIME is available on Linux")
}

/// Why a worker fenced itself (logged with the fence).
#[derive(Debug, Clone, Copy)]
pub enum FenceCause {
    /// No successful heartbeat for the fence threshold, on `CLOCK_BOOTTIME`.
    NoHeartbeat(Duration),
    /// The database clock saw this long between two heartbeats.
    DatabaseGap(Duration),
}

impl std::fmt::Display for FenceCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoHeartbeat(d) => write!(f, "no successful heartbeat for {:.1} s", d.as_secs_f64()),
            Self::DatabaseGap(d) => write!(f, "the database saw {:.1} s between two heartbeats", d.as_secs_f64()),
        }
    }
}

/// A running attempt's stop signals, set by the heartbeat from the rows.
struct Running {
    attempt: i32,
    /// Cancellation requested (POST /tasks/{id}/cancel).
    cancel: CancellationToken,
    /// The row moved on without this worker (the rescuer took it over).
    taken_over: CancellationToken,
}

/// What a running attempt watches, handed out by [`Liveness::track`].
pub struct Tracked {
    /// Cancelled when a cancel request for the attempt is seen.
    pub cancel: CancellationToken,
    /// Cancelled when the row shows the attempt is no longer this worker's.
    pub taken_over: CancellationToken,
}

/// State shared by the consume loop, the task runners and the heartbeat thread.
pub struct Liveness {
    /// `CLOCK_BOOTTIME` in ms at which the last successful heartbeat was *sent*.
    last_ok_ms: AtomicU64,
    fence_after: Duration,
    /// Cancelled when the worker fences itself; replaced once heartbeats resume.
    epoch: Mutex<CancellationToken>,
    /// Set by a fence, cleared by the next successful heartbeat, so one gap
    /// fences once however many of the three checks see it.
    fence_pending: AtomicBool,
    in_flight: AtomicI32,
    processed: AtomicI64,
    failed: AtomicI64,
    /// Stop signals of running attempts, by task id.
    running: Mutex<HashMap<String, Running>>,
    /// Partitions owned now, by topic (kept by the consumers' rebalance callbacks).
    partitions: Mutex<BTreeMap<String, BTreeSet<i32>>>,
    /// Wakes the heartbeat when the assignment changed, so it is reported at once.
    reassigned: Notify,
    /// Queues whose consumer is a member of the group now (one consumer per queue).
    joined: Mutex<BTreeSet<String>>,
    /// How many consumers the worker runs: joined when all of them are.
    consumers: AtomicUsize,
    /// `CLOCK_BOOTTIME` since which the worker owns no partition; `None` while it owns some.
    unowned_since: Mutex<Option<Duration>>,
    /// How long without partitions makes a joined worker `idle` (D).
    idle_after: Duration,
    /// Successful heartbeats in a row since the last failed one.
    healthy_beats: AtomicU32,
    /// Whether the latest heartbeat attempt failed.
    unreachable: AtomicBool,
}

impl Liveness {
    /// `dead_after` is D and `heartbeat_interval` H: the worker fences itself
    /// after D - H/2 without a successful heartbeat, measured from the moment
    /// that heartbeat was sent, so it stops before the rescuer (which needs the
    /// database-clock stamp to be D old) can act.
    pub fn new(dead_after: Duration, heartbeat_interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            // Registration was the first heartbeat.
            last_ok_ms: AtomicU64::new(boottime().as_millis() as u64),
            fence_after: dead_after.saturating_sub(heartbeat_interval / 2),
            epoch: Mutex::new(CancellationToken::new()),
            fence_pending: AtomicBool::new(false),
            in_flight: AtomicI32::new(0),
            processed: AtomicI64::new(0),
            failed: AtomicI64::new(0),
            running: Mutex::new(HashMap::new()),
            partitions: Mutex::default(),
            reassigned: Notify::new(),
            joined: Mutex::default(),
            consumers: AtomicUsize::new(1),
            unowned_since: Mutex::new(Some(boottime())),
            idle_after: dead_after,
            healthy_beats: AtomicU32::new(0),
            unreachable: AtomicBool::new(false),
        })
    }

    /// Records a successful heartbeat sent at `sent` (`CLOCK_BOOTTIME`). A
    /// gap since the previous one longer than the fence threshold fences
    /// first: the watchdog may not have run yet after a pause.
    fn mark_ok(&self, sent: Duration) {
        let sent_ms = sent.as_millis() as u64;
        let gap = Duration::from_millis(sent_ms.saturating_sub(self.last_ok_ms.load(Ordering::SeqCst)));
        if gap > self.fence_after {
            self.fence(FenceCause::NoHeartbeat(gap));
        }
        self.last_ok_ms.fetch_max(sent_ms, Ordering::SeqCst);
        self.healthy_beats.fetch_add(1, Ordering::SeqCst);
        self.unreachable.store(false, Ordering::SeqCst);
        if self.fence_pending.swap(false, Ordering::SeqCst) {
            tracing::warn!("heartbeat restored; worker takes tasks again");
        }
    }

    /// Records a failed or timed-out heartbeat.
    fn beat_failed(&self) {
        self.healthy_beats.store(0, Ordering::SeqCst);
        self.unreachable.store(true, Ordering::SeqCst);
    }

    /// True when the worker should leave its consumer group: fenced, its last
    /// heartbeat attempt failed (PostgreSQL unreachable), and no heartbeat for
    /// `dead_after`, the moment the rescuer takes its tasks.
    pub fn should_leave_group(&self, dead_after: Duration) -> bool {
        self.fenced() && self.unreachable.load(Ordering::SeqCst) && self.since_heartbeat() > dead_after
    }

    /// Successful heartbeats in a row (reset by a failed one or a fence).
    pub fn healthy_beats(&self) -> u32 {
        self.healthy_beats.load(Ordering::SeqCst)
    }

    /// Time since the last successful heartbeat was sent (`CLOCK_BOOTTIME`).
    pub fn since_heartbeat(&self) -> Duration {
        boottime().saturating_sub(Duration::from_millis(self.last_ok_ms.load(Ordering::SeqCst)))
    }

    /// True while the worker must not run tasks: no successful heartbeat for
    /// the fence threshold, or fenced and not heartbeated since.
    pub fn fenced(&self) -> bool {
        self.fence_pending.load(Ordering::SeqCst) || self.since_heartbeat() > self.fence_after
    }

    /// Token that running handlers watch; cancelled when the worker fences itself.
    pub fn epoch(&self) -> CancellationToken {
        self.epoch.lock().clone()
    }

    /// Fences the worker: cancels the current epoch (aborting every running
    /// handler) and starts a fresh one. Does nothing when already fenced since
    /// the last successful heartbeat.
    pub fn fence(&self, cause: FenceCause) {
        self.fence_unless_beaten(cause, None);
    }

    /// Fences, unless `seen_ok_ms` is given and a heartbeat has succeeded
    /// since it was read: the watchdog must not fence again a worker whose
    /// heartbeat has just cleared the fence.
    fn fence_unless_beaten(&self, cause: FenceCause, seen_ok_ms: Option<u64>) {
        let mut e = self.epoch.lock();
        if seen_ok_ms.is_some_and(|seen| self.last_ok_ms.load(Ordering::SeqCst) != seen) {
            return;
        }
        if self.fence_pending.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::error!(
            %cause,
            in_flight = self.in_flight.load(Ordering::SeqCst),
            "no heartbeat for the fence threshold (D - H/2): fencing this worker, aborting its running tasks"
        );
        self.healthy_beats.store(0, Ordering::SeqCst);
        metrics::counter!(yadtq_core::metrics::WORKER_FENCINGS).increment(1);
        e.cancel();
        *e = CancellationToken::new();
    }

    /// Registers a running attempt; its signals are set from the rows checked
    /// with every heartbeat.
    pub fn track(&self, id: &str, attempt: i32) -> Tracked {
        let r = Running { attempt, cancel: CancellationToken::new(), taken_over: CancellationToken::new() };
        let tracked = Tracked { cancel: r.cancel.clone(), taken_over: r.taken_over.clone() };
        self.running.lock().insert(id.to_string(), r);
        tracked
    }

    /// Forgets a finished attempt; a newer attempt of the same task, claimed
    /// here meanwhile, is kept.
    pub fn untrack(&self, id: &str, attempt: i32) {
        let mut running = self.running.lock();
        if running.get(id).is_some_and(|r| r.attempt == attempt) {
            running.remove(id);
        }
    }

    /// The attempts running now, as the heartbeat checks them.
    fn running(&self) -> Vec<RunningAttempt> {
        let running = self.running.lock();
        running.iter().map(|(id, r)| RunningAttempt { task_id: id.clone(), attempt: r.attempt }).collect()
    }

    /// Acts on what the rows said of the running attempts; an attempt that has
    /// finished or been claimed again here since the check is left alone.
    fn signal(&self, signals: &[AttemptSignal]) {
        let running = self.running.lock();
        for s in signals {
            let (a, taken_over) = match s {
                AttemptSignal::CancelRequested(a) => (a, false),
                AttemptSignal::TakenOver(a) => (a, true),
            };
            let Some(r) = running.get(&a.task_id).filter(|r| r.attempt == a.attempt) else { continue };
            if taken_over {
                tracing::error!(id = %a.task_id, attempt = a.attempt, "attempt taken over by another worker: aborting it here");
                r.taken_over.cancel();
            } else {
                tracing::info!(id = %a.task_id, attempt = a.attempt, "cancel requested for a running task");
                r.cancel.cancel();
            }
        }
    }

    /// Counts an attempt starting.
    pub fn task_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts an attempt ending; `success` picks the processed or failed counter.
    pub fn task_finished(&self, success: Option<bool>) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match success {
            Some(true) => self.processed.fetch_add(1, Ordering::SeqCst),
            Some(false) => self.failed.fetch_add(1, Ordering::SeqCst),
            None => 0,
        };
    }

    /// Records the `(topic, partition)`s one rebalance gained (`owned`) or took away.
    pub fn reassigned(&self, partitions: &[(&str, i32)], owned: bool) {
        {
            let mut all = self.partitions.lock();
            for &(topic, p) in partitions {
                let mine = all.entry(topic.to_string()).or_default();
                if owned {
                    mine.insert(p);
                } else {
                    mine.remove(&p);
                }
            }
            all.retain(|_, mine| !mine.is_empty());
            let mut since = self.unowned_since.lock();
            match (all.is_empty(), *since) {
                (true, None) => *since = Some(boottime()),
                (false, Some(_)) => *since = None,
                _ => {}
            }
        }
        self.reassigned.notify_one();
    }

    /// Sets how many consumers (one per queue) must be members of the group
    /// for the worker to count as joined.
    pub fn set_consumers(&self, n: usize) {
        self.consumers.store(n, Ordering::SeqCst);
    }

    /// Records that the consumer of `queue` joined its group (`true`: it got
    /// an assignment, even an empty one) or lost its membership (`false`).
    pub fn membership(&self, queue: &str, member: bool) {
        let mut joined = self.joined.lock();
        if member {
            joined.insert(queue.to_string());
        } else {
            joined.remove(queue);
        }
        drop(joined);
        self.reassigned.notify_one();
    }

    /// Sets the worker's gauges (in flight, partitions, ready, fenced) from
    /// its state now; called with every heartbeat.
    fn export_gauges(&self) {
        use yadtq_core::metrics as m;
        let state = self.state();
        let owned: usize = self.partitions.lock().values().map(BTreeSet::len).sum();
        metrics::gauge!(m::WORKER_IN_FLIGHT).set(f64::from(self.in_flight.load(Ordering::SeqCst)));
        metrics::gauge!(m::WORKER_PARTITIONS).set(owned as f64);
        metrics::gauge!(m::WORKER_READY)
            .set(f64::from(u8::from(matches!(state, WorkerState::Ready | WorkerState::Idle))));
        metrics::gauge!(m::WORKER_FENCED).set(f64::from(u8::from(state == WorkerState::Fenced)));
    }

    /// Sets the heartbeat-age gauge (seconds since the last successful
    /// heartbeat); called at each scrape, so it grows while heartbeats fail.
    pub fn export_heartbeat_age(&self) {
        metrics::gauge!(yadtq_core::metrics::WORKER_HEARTBEAT_AGE).set(self.since_heartbeat().as_secs_f64());
    }

    /// The state reported with each heartbeat (docs/architecture.md, "Worker states").
    pub fn state(&self) -> WorkerState {
        let joined = self.joined.lock().len() >= self.consumers.load(Ordering::SeqCst);
        let unowned = *self.unowned_since.lock();
        if self.fenced() {
            WorkerState::Fenced
        } else if !joined {
            WorkerState::Joining
        } else if unowned.is_some_and(|since| boottime().saturating_sub(since) > self.idle_after) {
            WorkerState::Idle
        } else {
            WorkerState::Ready
        }
    }

    /// Partitions owned now, as written with each heartbeat.
    pub fn partitions(&self) -> Partitions {
        let all = self.partitions.lock();
        all.iter().map(|(t, ps)| (t.clone(), ps.iter().copied().collect())).collect()
    }

    /// Current counters, as written with each heartbeat.
    pub fn counts(&self) -> WorkerCounts {
        WorkerCounts {
            in_flight: self.in_flight.load(Ordering::SeqCst),
            processed: self.processed.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
        }
    }
}

/// Starts the heartbeat thread; it beats every `interval`, and at once after a
/// rebalance, until `stop` is cancelled. Also starts the watchdog thread,
/// which fences the worker as soon as `CLOCK_BOOTTIME` shows the fence
/// threshold passed without a successful heartbeat (after a pause: within
/// [`WATCHDOG_TICK`] of the resume).
pub fn spawn_heartbeat(
    database_url: String,
    worker_id: Uuid,
    interval: Duration,
    live: Arc<Liveness>,
    stop: CancellationToken,
) -> std::thread::JoinHandle<()> {
    let (watched, watch_stop) = (live.clone(), stop.clone());
    std::thread::Builder::new()
        .name("yadtq-watchdog".into())
        .spawn(move || {
            while !watch_stop.is_cancelled() {
                std::thread::sleep(WATCHDOG_TICK);
                let seen = watched.last_ok_ms.load(Ordering::SeqCst);
                let since = boottime().saturating_sub(Duration::from_millis(seen));
                if since > watched.fence_after {
                    watched.fence_unless_beaten(FenceCause::NoHeartbeat(since), Some(seen));
                }
            }
        })
        .expect("spawn watchdog thread");
    std::thread::Builder::new()
        .name("yadtq-heartbeat".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("heartbeat runtime");
            rt.block_on(heartbeat_loop(database_url, worker_id, interval, live, stop));
        })
        .expect("spawn heartbeat thread")
}

async fn heartbeat_loop(
    database_url: String,
    worker_id: Uuid,
    interval: Duration,
    live: Arc<Liveness>,
    stop: CancellationToken,
) {
    let mut conn = None;
    let mut ticker = yadtq_core::periodic::every(interval);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
            _ = live.reassigned.notified() => {}
        }
        live.export_gauges();
        let sent = boottime();
        let beat = async {
            if conn.is_none() {
                conn = Some(store::connect_dedicated(&database_url).await?);
            }
            let c = conn.as_mut().expect("connected");
            let beat = workers::heartbeat(&mut *c, worker_id, live.counts(), &live.partitions(), live.state()).await?;
            // Cancel requests and takeovers ride on the heartbeat: acted on within one interval.
            let signals = attempts::signals(&mut *c, worker_id, &live.running()).await?;
            Ok::<_, StoreError>((beat, signals))
        };
        match tokio::time::timeout(interval, beat).await {
            Ok(Ok((beat, signals))) => {
                if let Beat::Written { since_previous } = beat {
                    if since_previous > live.fence_after {
                        live.fence(FenceCause::DatabaseGap(since_previous));
                    }
                }
                live.signal(&signals);
                live.mark_ok(sent);
            }
            Ok(Err(e)) => {
                tracing::warn!(%worker_id, error = %e, "heartbeat failed");
                live.beat_failed();
                conn = None;
            }
            Err(_) => {
                tracing::warn!(%worker_id, "heartbeat timed out");
                live.beat_failed();
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Arc<Liveness> {
        Liveness::new(Duration::from_secs(10), Duration::from_secs(2))
    }

    #[test]
    fn a_heartbeat_after_a_gap_fences_before_it_counts() {
        let live = live();
        let handlers = live.epoch();
        // A heartbeat sent 30 s after the last one: the process was paused.
        live.mark_ok(boottime() + Duration::from_secs(30));
        assert!(handlers.is_cancelled(), "the running handlers are aborted");
        assert!(!live.fenced(), "and the worker takes tasks again once it has heartbeated");
        assert!(!live.epoch().is_cancelled());
    }

    #[test]
    fn one_gap_fences_once_however_many_checks_see_it() {
        let live = live();
        live.fence(FenceCause::NoHeartbeat(Duration::from_secs(9)));
        assert!(live.fenced());
        let started_after = live.epoch();
        live.fence(FenceCause::DatabaseGap(Duration::from_secs(9)));
        assert!(!started_after.is_cancelled());
        live.mark_ok(boottime());
        assert!(!live.fenced());
        live.fence(FenceCause::NoHeartbeat(Duration::from_secs(9)));
        assert!(started_after.is_cancelled(), "a new gap after a heartbeat fences again");
    }

    #[test]
    fn the_state_follows_membership_partitions_and_the_fence() {
        let live = Liveness::new(Duration::from_millis(400), Duration::from_millis(10));
        live.set_consumers(2);
        assert_eq!(live.state(), WorkerState::Joining);
        live.membership("q1", true);
        assert_eq!(live.state(), WorkerState::Joining, "one of two consumers joined");
        live.membership("q2", true);
        live.reassigned(&[("q1", 0)], true);
        assert_eq!(live.state(), WorkerState::Ready);
        live.reassigned(&[("q1", 0)], false);
        assert_eq!(live.state(), WorkerState::Ready, "no partitions for a moment is still ready");
        std::thread::sleep(Duration::from_millis(450));
        live.mark_ok(boottime());
        assert_eq!(live.state(), WorkerState::Idle, "no partitions past the grace period");
        live.fence(FenceCause::NoHeartbeat(Duration::from_secs(1)));
        assert_eq!(live.state(), WorkerState::Fenced);
        live.mark_ok(boottime());
        live.membership("q2", false);
        assert_eq!(live.state(), WorkerState::Joining, "a consumer that lost its membership rejoins");
    }

    #[test]
    fn signals_reach_only_the_attempt_they_name() {
        let live = live();
        let t = live.track("a", 2);
        let other = live.track("b", 1);
        let old = RunningAttempt { task_id: "a".into(), attempt: 1 };
        live.signal(&[AttemptSignal::TakenOver(old)]);
        assert!(!t.taken_over.is_cancelled(), "attempt 1's signal does not stop attempt 2");
        live.signal(&[
            AttemptSignal::TakenOver(RunningAttempt { task_id: "a".into(), attempt: 2 }),
            AttemptSignal::CancelRequested(RunningAttempt { task_id: "b".into(), attempt: 1 }),
        ]);
        assert!(t.taken_over.is_cancelled() && !t.cancel.is_cancelled());
        assert!(other.cancel.is_cancelled() && !other.taken_over.is_cancelled());
        live.untrack("a", 1);
        assert_eq!(live.running().len(), 2, "untracking attempt 1 leaves attempt 2 alone");
        live.untrack("a", 2);
        assert_eq!(live.running(), vec![RunningAttempt { task_id: "b".into(), attempt: 1 }]);
    }
}
