//! The Kafka side of the worker: consumer settings, the rebalance context that
//! keeps completion tracking in step with the assignment, and offset storing.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use uuid::Uuid;

use crate::config::WorkerConfig;
use crate::liveness::Liveness;
use crate::offsets::{OffsetTracker, RecordPos};

/// Consumer context: logs rebalances and commits, forgets revoked partitions,
/// and keeps the worker's reported assignment (GET /workers) current.
pub struct WorkerContext {
    /// In-flight records per partition, shared with the consume loop.
    pub tracker: Arc<Mutex<OffsetTracker>>,
    /// Where the assignment is reported from (the heartbeat).
    pub live: Arc<Liveness>,
    /// The queue this consumer reads (one consumer per queue, reading the
    /// queue's shared topic or its dedicated tenants' topics): the name its
    /// membership and lag are reported under.
    pub queue: String,
}

impl ClientContext for WorkerContext {
    /// librdkafka's statistics (every [`STATS_INTERVAL_MS`]): exports the
    /// lag of each partition this consumer owns ([`yadtq_core::metrics::CONSUMER_LAG`]),
    /// replacing the previous report so revoked partitions vanish.
    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice::<Stats>(statistics) {
            Ok(stats) => {
                let samples = stats.lag_samples();
                let m = yadtq_core::metrics::CONSUMER_LAG;
                let help = "Messages behind the high watermark (stored offset) per owned partition";
                yadtq_core::metrics::set_samples(m, help, &format!("lag:{}", self.queue), samples);
            }
            Err(e) => tracing::debug!(error = %e, "cannot parse librdkafka statistics"),
        }
    }
}

/// How often librdkafka reports statistics (consumer lag), milliseconds.
pub const STATS_INTERVAL_MS: u32 = 5000;

/// The part of librdkafka's statistics JSON the lag needs.
#[derive(serde::Deserialize)]
struct Stats {
    #[serde(default)]
    topics: std::collections::HashMap<String, StatsTopic>,
}

#[derive(serde::Deserialize)]
struct StatsTopic {
    #[serde(default)]
    partitions: std::collections::HashMap<String, StatsPartition>,
}

#[derive(serde::Deserialize)]
struct StatsPartition {
    partition: i32,
    #[serde(default)]
    desired: bool,
    #[serde(default = "unknown")]
    consumer_lag: i64,
    #[serde(default = "unknown")]
    consumer_lag_stored: i64,
}

fn unknown() -> i64 {
    -1
}

impl Stats {
    /// One sample per owned partition with a known lag: the distance from
    /// the stored offset (what is complete here), else from the committed one.
    fn lag_samples(&self) -> Vec<yadtq_core::metrics::Sample> {
        let mut out = Vec::new();
        for (topic, t) in &self.topics {
            for p in t.partitions.values() {
                if p.partition < 0 || !p.desired {
                    continue; // the internal "unassigned" partition, or one not ours
                }
                let lag = if p.consumer_lag_stored >= 0 { p.consumer_lag_stored } else { p.consumer_lag };
                if lag >= 0 {
                    out.push((vec![("topic", topic.clone()), ("partition", p.partition.to_string())], lag as f64));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                if consumer.assignment_lost() {
                    self.live.membership(&self.queue, false);
                    tracing::error!(
                        partitions = ?partitions(tpl),
                        "consumer group membership LOST (session timeout or max.poll.interval.ms exceeded); \
                         running tasks finish, their records go to the partitions' new owners, rejoining"
                    );
                }
                // Commit what is complete before the partitions move; records still
                // running finish here, and their new owner skips them at claim.
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %e, "commit on revoke");
                }
                let mut tracker = self.tracker.lock();
                for e in tpl.elements() {
                    tracker.revoke(e.topic(), e.partition());
                }
                drop(tracker);
                self.report(tpl, false);
                tracing::info!(partitions = ?partitions(tpl), "partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                self.live.membership(&self.queue, true);
                self.report(tpl, true);
                tracing::info!(partitions = ?partitions(tpl), "partitions assigned")
            }
            Rebalance::Error(e) => tracing::error!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(e) = result {
            // "No offset stored" is normal when nothing finished since the last commit.
            tracing::debug!(error = %e, offsets = offsets.count(), "offset commit");
        }
    }
}

impl WorkerContext {
    /// Passes a rebalance's partitions (gained or lost: the cooperative
    /// protocol moves only some) to the reported assignment.
    fn report(&self, tpl: &TopicPartitionList, owned: bool) {
        let elements = tpl.elements();
        let partitions: Vec<(&str, i32)> = elements.iter().map(|e| (e.topic(), e.partition())).collect();
        self.live.reassigned(&partitions, owned);
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// Upper bound of the consumer's `heartbeat.interval.ms` (otherwise a third of
/// the session timeout).
const HEARTBEAT_MAX_MS: u32 = 500;

/// The task consumer.
pub type TaskConsumer = StreamConsumer<WorkerContext>;

/// Creates the consumer of `queue` in group `<ns>yadtq-workers`, subscribed
/// to `topics` (the queue's shared topic, or its topics of the dedicated
/// tenants this worker serves). One group for every worker: members
/// subscribed to different topics only ever get those topics' partitions.
pub fn create(
    cfg: &WorkerConfig,
    worker_id: Uuid,
    queue: &str,
    topics: &[String],
    tracker: Arc<Mutex<OffsetTracker>>,
    live: Arc<Liveness>,
) -> KafkaResult<TaskConsumer> {
    let names = cfg.common.names();
    let session = cfg.kafka_session_timeout_ms;
    let mut c = yadtq_core::kafka::client_config(&cfg.common, &format!("yadtq-worker-{worker_id}-{queue}"));
    c.set("group.id", names.group_id())
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session.to_string())
        // Members learn of a rebalance from a heartbeat answer: a short interval
        // keeps the pause of moved partitions short when a worker joins or leaves.
        .set("heartbeat.interval.ms", (session / 3).clamp(100, HEARTBEAT_MAX_MS).to_string())
        .set("max.poll.interval.ms", cfg.kafka_max_poll_interval_ms.to_string())
        .set("fetch.wait.max.ms", cfg.kafka_fetch_wait_ms.to_string())
        .set("statistics.interval.ms", STATS_INTERVAL_MS.to_string());
    let consumer: TaskConsumer = yadtq_core::kafka::apply_user_options(&cfg.common, &mut c)
        .create_with_context(WorkerContext { tracker, live, queue: queue.to_string() })?;
    consumer.subscribe(&topic_refs(topics))?;
    Ok(consumer)
}

fn topic_refs(topics: &[String]) -> Vec<&str> {
    topics.iter().map(String::as_str).collect()
}

/// Stores `next` (the next offset to read) for commit on the record's partition.
/// Fails harmlessly when the partition was revoked meanwhile.
pub fn store(consumer: &TaskConsumer, pos: &RecordPos, next: i64) {
    let mut tpl = TopicPartitionList::new();
    if tpl.add_partition_offset(&pos.topic, pos.partition, Offset::Offset(next)).is_ok() {
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::debug!(partition = pos.partition, next, error = %e, "offset not stored (partition revoked?)");
        }
    }
}

/// Pauses (or resumes) fetching on every assigned partition; polling goes on.
pub fn set_paused(consumer: &TaskConsumer, paused: bool) {
    let Ok(assignment) = consumer.assignment() else {
        return;
    };
    let result = if paused { consumer.pause(&assignment) } else { consumer.resume(&assignment) };
    if let Err(e) = result {
        tracing::warn!(error = %e, paused, "cannot change partition pause state");
    }
}

/// How often the consume loop checks whether to leave or rejoin the group.
pub const MEMBERSHIP_CHECK: Duration = Duration::from_millis(250);
/// Successful heartbeats in a row before a worker that left its group rejoins.
pub const REJOIN_AFTER_BEATS: u32 = 3;

/// Leaves the consumer group while the worker cannot reach PostgreSQL (but
/// possibly Kafka), so the rest of the group serves its partitions, and
/// rejoins once heartbeats are healthy again. One per consumer.
pub struct Membership {
    /// The consumer's queue, for logs and the reported membership.
    queue: String,
    topics: Vec<String>,
    dead_after: Duration,
    heartbeat_interval: Duration,
    subscribed: bool,
    /// When a worker that left may rejoin (healthy again, plus jitter).
    rejoin_at: Option<Instant>,
}

impl Membership {
    /// The consumer of `queue` subscribed to `topics` (as [`create`] leaves it).
    pub fn new(queue: String, topics: Vec<String>, dead_after: Duration, heartbeat_interval: Duration) -> Self {
        Self { queue, topics, dead_after, heartbeat_interval, subscribed: true, rejoin_at: None }
    }

    /// Leaves the group when [`Liveness::should_leave_group`] says so; the
    /// revoke callback commits what is complete and the records in hand are
    /// dropped before their claim. Rejoins after [`REJOIN_AFTER_BEATS`]
    /// healthy heartbeats and a random delay of up to two heartbeat intervals,
    /// so workers that were all cut off do not rejoin in one storm of
    /// rebalances. Returns true when it rejoined.
    pub fn check(&mut self, consumer: &TaskConsumer, live: &Liveness) -> bool {
        if self.subscribed {
            if live.should_leave_group(self.dead_after) {
                tracing::warn!(
                    queue = %self.queue,
                    since_last_heartbeat_s = live.since_heartbeat().as_secs_f64(),
                    "PostgreSQL unreachable for the dead-after threshold: leaving the consumer group so \
                     other workers serve these partitions; records in hand are dropped"
                );
                // librdkafka keeps a partition's pause flag across revoke and
                // re-assign: resume first, so partitions handed back later fetch.
                set_paused(consumer, false);
                consumer.unsubscribe();
                live.membership(&self.queue, false);
                self.subscribed = false;
                self.rejoin_at = None;
            }
            return false;
        }
        if live.fenced() || live.healthy_beats() < REJOIN_AFTER_BEATS {
            self.rejoin_at = None;
            return false;
        }
        let at = *self.rejoin_at.get_or_insert_with(|| {
            Instant::now() + rand::thread_rng().gen_range(Duration::ZERO..=self.heartbeat_interval * 2)
        });
        if Instant::now() < at {
            return false;
        }
        match consumer.subscribe(&topic_refs(&self.topics)) {
            Ok(()) => {
                tracing::info!(queue = %self.queue, "heartbeats healthy again: rejoining the consumer group");
                self.subscribed = true;
                true
            }
            Err(e) => {
                tracing::warn!(queue = %self.queue, error = %e, "cannot rejoin the consumer group yet");
                false
            }
        }
    }
}

#[cfg(test)]
mod stats_tests {
    use super::Stats;

    #[test]
    fn lag_is_read_for_owned_partitions_only() {
        let json = br#"{"name": "c", "topics": {"ns.yadtq.tasks": {"topic": "ns.yadtq.tasks", "partitions": {
            "0": {"partition": 0, "desired": true, "consumer_lag": 9, "consumer_lag_stored": 4},
            "1": {"partition": 1, "desired": true, "consumer_lag": 3, "consumer_lag_stored": -1},
            "2": {"partition": 2, "desired": false, "consumer_lag": 7, "consumer_lag_stored": 7},
            "3": {"partition": 3, "desired": true, "consumer_lag": -1, "consumer_lag_stored": -1},
            "-1": {"partition": -1, "desired": false, "consumer_lag": -1, "consumer_lag_stored": -1}}}}}"#;
        let stats: Stats = serde_json::from_slice(json).unwrap();
        let lag: Vec<(String, f64)> = stats.lag_samples().into_iter().map(|(l, v)| (l[1].1.clone(), v)).collect();
        assert_eq!(lag, [("0".to_string(), 4.0), ("1".to_string(), 3.0)]);
    }
}
