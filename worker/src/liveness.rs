//! Heartbeats and self-fencing (design guarantees 3 and 4). Heartbeats run on
//! their own OS thread, runtime and PostgreSQL connection, so busy handlers or
//! a saturated pool never delay them. A worker that has not heartbeated for
//! (almost) the dead-after threshold fences itself: it aborts running handlers
//! and claims nothing until a heartbeat succeeds again, so by the time the
//! rescuer requeues its tasks they no longer run here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use yadtq_core::store::{self, Partitions, WorkerCounts};

/// State shared by the consume loop, the task runners and the heartbeat thread.
pub struct Liveness {
    started: Instant,
    /// Milliseconds since `started` at which the last successful heartbeat was *sent*.
    last_ok_ms: AtomicU64,
    fence_after: Duration,
    /// Cancelled when the worker fences itself; replaced once heartbeats resume.
    epoch: Mutex<CancellationToken>,
    in_flight: AtomicI32,
    processed: AtomicI64,
    failed: AtomicI64,
    /// Cancel-request tokens of running attempts, by task id.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Partitions owned now, by topic (kept by the consumers' rebalance callbacks).
    partitions: Mutex<std::collections::BTreeMap<String, std::collections::BTreeSet<i32>>>,
    /// Wakes the heartbeat when the assignment changed, so it is reported at once.
    reassigned: Notify,
}

impl Liveness {
    /// `dead_after` is D and `heartbeat_interval` H: the worker fences itself
    /// after D - H/2 without a successful heartbeat, measured from the moment
    /// that heartbeat was sent, so it stops before the rescuer (which needs the
    /// database-clock stamp to be D old) can act.
    pub fn new(dead_after: Duration, heartbeat_interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last_ok_ms: AtomicU64::new(0),
            fence_after: dead_after.saturating_sub(heartbeat_interval / 2),
            epoch: Mutex::new(CancellationToken::new()),
            in_flight: AtomicI32::new(0),
            processed: AtomicI64::new(0),
            failed: AtomicI64::new(0),
            running: Mutex::new(HashMap::new()),
            partitions: Mutex::default(),
            reassigned: Notify::new(),
        })
    }

    fn mark_ok(&self, sent: Instant) {
        let ms = sent.duration_since(self.started).as_millis() as u64;
        self.last_ok_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// Time since the last successful heartbeat was sent.
    pub fn since_heartbeat(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_millis(self.last_ok_ms.load(Ordering::SeqCst)))
    }

    /// True while the worker must not run tasks.
    pub fn fenced(&self) -> bool {
        self.since_heartbeat() > self.fence_after
    }

    /// Token that running handlers watch; cancelled when the worker fences itself.
    pub fn epoch(&self) -> CancellationToken {
        self.epoch.lock().expect("epoch lock").clone()
    }

    /// Cancels the current epoch (aborting handlers) and starts a fresh one.
    fn fence(&self) {
        let mut e = self.epoch.lock().expect("epoch lock");
        e.cancel();
        *e = CancellationToken::new();
    }

    /// Registers a running attempt; the token is cancelled when a cancel
    /// request for the task is seen (checked with every heartbeat).
    pub fn track(&self, id: &str) -> CancellationToken {
        let token = CancellationToken::new();
        self.running.lock().expect("running lock").insert(id.to_string(), token.clone());
        token
    }

    /// Forgets a finished attempt.
    pub fn untrack(&self, id: &str) {
        self.running.lock().expect("running lock").remove(id);
    }

    /// Cancels the running attempts of `ids`; returns how many were running here.
    fn cancel_requested(&self, ids: &[String]) -> usize {
        let running = self.running.lock().expect("running lock");
        ids.iter().filter_map(|id| running.get(id)).map(CancellationToken::cancel).count()
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
            let mut all = self.partitions.lock().expect("partitions lock");
            for &(topic, p) in partitions {
                let mine = all.entry(topic.to_string()).or_default();
                if owned {
                    mine.insert(p);
                } else {
                    mine.remove(&p);
                }
            }
            all.retain(|_, mine| !mine.is_empty());
        }
        self.reassigned.notify_one();
    }

    /// Partitions owned now, as written with each heartbeat.
    pub fn partitions(&self) -> Partitions {
        let all = self.partitions.lock().expect("partitions lock");
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
/// rebalance, until `stop` is cancelled.
pub fn spawn_heartbeat(
    database_url: String,
    worker_id: Uuid,
    interval: Duration,
    live: Arc<Liveness>,
    stop: CancellationToken,
) -> std::thread::JoinHandle<()> {
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
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_fenced = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
            _ = live.reassigned.notified() => {}
        }
        let sent = Instant::now();
        let beat = async {
            if conn.is_none() {
                conn = Some(store::connect_dedicated(&database_url).await?);
            }
            let c = conn.as_mut().expect("connected");
            store::heartbeat(&mut *c, worker_id, live.counts(), &live.partitions()).await?;
            // Cancel requests ride on the heartbeat: acted on within one interval.
            let ids = store::cancel_requests(&mut *c, worker_id).await?;
            if !ids.is_empty() && live.cancel_requested(&ids) > 0 {
                tracing::info!(%worker_id, tasks = ?ids, "cancel requested for running tasks");
            }
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(interval, beat).await {
            Ok(Ok(())) => {
                live.mark_ok(sent);
                if was_fenced {
                    tracing::warn!(%worker_id, "heartbeat restored; worker takes tasks again");
                    was_fenced = false;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(%worker_id, error = %e, "heartbeat failed");
                conn = None;
            }
            Err(_) => {
                tracing::warn!(%worker_id, "heartbeat timed out");
                conn = None;
            }
        }
        if live.fenced() && !was_fenced {
            was_fenced = true;
            tracing::error!(
                %worker_id,
                since_last_heartbeat_s = live.since_heartbeat().as_secs_f64(),
                in_flight = live.counts().in_flight,
                "no heartbeat for the dead-after threshold: fencing this worker, aborting its running tasks"
            );
            live.fence();
        }
    }
}
