//! The sampler: the leader's view of the database for the metrics (task
//! counts by queue and status, oldest queued age, publisher backlog, workers
//! alive), exported under source [`SOURCE`] only while this process leads, so
//! a sum over all processes never counts a queue twice:
//! - withdrawn the moment the lease loop sees the lease lost;
//! - rendered only until [`VALID_FOR`] (in maintenance periods) after the
//!   last lease check that confirmed it, so a leader cut off from PostgreSQL
//!   (its check hanging) stops exporting by itself;
//! - a new leader samples only after leading for [`VALID_FOR`], by which
//!   time the previous leader's samples have expired: the old one's lock was
//!   confirmed before its session ended, and the new one won the lock after.

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;

use crate::metrics::{self as m, Sample};
use crate::model::TaskStatus;
use crate::store::stats::StatusCount;

/// How often the active statuses are sampled.
pub(crate) const PERIOD: Duration = Duration::from_secs(2);
/// Finished counts (a table scan) are sampled every this many passes (30 s).
const FINISHED_EVERY: u32 = 15;
/// The metrics source name of the leader's samples.
pub(crate) const SOURCE: &str = "leader";
/// Samples stay valid this many maintenance periods after the lease check
/// that confirmed the lease; a new leader waits as long before sampling.
pub(crate) const VALID_FOR: u32 = 2;

const ACTIVE: [TaskStatus; 3] = [TaskStatus::Queued, TaskStatus::Scheduled, TaskStatus::Processing];
const FINISHED: [TaskStatus; 3] = [TaskStatus::Success, TaskStatus::Failed, TaskStatus::Cancelled];

/// Held while samples are published or withdrawn, so a pass that ends just
/// as the lease is lost never publishes after the withdrawal.
static GATE: Mutex<()> = Mutex::new(());

/// State kept between passes of one process.
#[derive(Default)]
pub(crate) struct Sampler {
    passes: u32,
    finished: Vec<StatusCount>,
    /// Queues seen since this process started leading (their series stay,
    /// at 0, once drained).
    queues: BTreeSet<String>,
}

impl Sampler {
    /// One pass: queries PostgreSQL and, if this process still leads
    /// (`leading`), publishes the samples. Errors are logged and leave the
    /// previous samples in place (their timestamp gauge shows their age).
    pub(crate) async fn pass(
        &mut self,
        pool: &PgPool,
        dead_after: Duration,
        leading: &watch::Receiver<Option<Instant>>,
    ) {
        let active = match crate::store::stats::active(pool).await {
            Ok(a) => a,
            Err(e) => return tracing::warn!(error = %e, "sampler: cannot count tasks"),
        };
        if self.passes.is_multiple_of(FINISHED_EVERY) {
            match crate::store::stats::finished(pool).await {
                Ok(f) => self.finished = f,
                Err(e) => tracing::warn!(error = %e, "sampler: cannot count finished tasks"),
            }
        }
        self.passes = self.passes.wrapping_add(1);
        let alive = match crate::store::stats::workers_alive(pool, dead_after).await {
            Ok(n) => n,
            Err(e) => return tracing::warn!(error = %e, "sampler: cannot count workers"),
        };
        self.queues.extend(active.counts.iter().chain(&self.finished).map(|c| c.queue.clone()));
        let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for q in &self.queues {
            for s in ACTIVE.iter().chain(&FINISHED) {
                counts.insert((q, s.as_str()), 0);
            }
        }
        for c in active.counts.iter().chain(&self.finished) {
            counts.insert((&c.queue, c.status.as_str()), c.count);
        }
        let tasks: Vec<Sample> = counts
            .into_iter()
            .map(|((q, s), n)| (vec![("queue", q.to_owned()), ("status", s.to_owned())], n as f64))
            .collect();
        let oldest: BTreeMap<&str, f64> = active.oldest_queued.iter().map(|(q, a)| (q.as_str(), *a)).collect();
        let oldest: Vec<Sample> = self
            .queues
            .iter()
            .map(|q| (vec![("queue", q.clone())], oldest.get(q.as_str()).copied().unwrap_or(0.0)))
            .collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();

        let _gate = GATE.lock();
        if leading.borrow().is_none() {
            return;
        }
        m::set_samples(m::QUEUE_TASKS, "Tasks by queue and status (leader's sample)", SOURCE, tasks);
        m::set_samples(
            m::QUEUE_OLDEST_AGE,
            "Age of the oldest queued task per queue, seconds (leader's sample)",
            SOURCE,
            oldest,
        );
        m::set_samples(
            m::PUBLISHER_BACKLOG,
            "Queued tasks not yet sent to Kafka (leader's sample)",
            SOURCE,
            vec![(vec![], active.unpublished as f64)],
        );
        m::set_samples(
            m::WORKERS_ALIVE,
            "Workers alive, database clock (leader's sample)",
            SOURCE,
            vec![(vec![], alive as f64)],
        );
        m::set_samples(
            m::LEADER_SAMPLED_AT,
            "Unix time of the leader's last sample, seconds",
            SOURCE,
            vec![(vec![], now.as_secs_f64())],
        );
    }
}

/// Records that the lease was confirmed by a check sent at `asked`: the
/// samples stay valid until `asked + VALID_FOR × period`.
pub(crate) fn confirmed(asked: Instant, period: Duration) {
    m::set_source_deadline(SOURCE, asked + period * VALID_FOR);
}

/// Withdraws the leader's samples (call once leadership is lost, after
/// `leading` says so).
pub(crate) fn withdraw() {
    let _gate = GATE.lock();
    m::clear_samples(SOURCE);
}
