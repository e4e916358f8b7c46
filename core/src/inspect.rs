//! Read-only views of Kafka for operators (`GET /dead-letters`, `GET
//! /queues`): the records on the dead-letter topic, and the workers'
//! consumer lag per queue. Neither joins a consumer group: dead letters are
//! read by assigning partitions directly (nothing is committed), and the
//! lag compares the workers' committed offsets (an OffsetFetch for their
//! group) with each partition's high watermark.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::CommonConfig;
use crate::kafka::{apply_user_options, client_config};

/// Header naming why a record was dead-lettered (written by the worker).
pub(crate) const REASON_HEADER: &str = "yadtq-dlq-reason";
/// Header naming where a dead letter came from: `topic/partition/offset`.
pub(crate) const ORIGIN_HEADER: &str = "yadtq-dlq-origin";

/// One record of the dead-letter topic: a record a worker found on a task
/// topic that is not a valid envelope, copied with its key and value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetter {
    /// Partition of the dead-letter topic.
    pub partition: i32,
    /// Offset in that partition; with `partition`, the dead letter's address.
    pub offset: i64,
    /// When it was dead-lettered (the record's timestamp), if it has one.
    pub timestamp: Option<DateTime<Utc>>,
    /// The original record's key (for yadtq's own records, the task id), as
    /// UTF-8 text with invalid bytes replaced.
    pub key: Option<String>,
    /// Why the worker refused it (`invalid envelope: …`, `unknown envelope version 2`).
    pub reason: Option<String>,
    /// Where it was read: `topic/partition/offset` of the task topic.
    pub origin: Option<String>,
    /// The record's value as UTF-8 text (invalid bytes replaced), cut to the
    /// reader's preview length; null when the record had no value.
    pub payload: Option<String>,
    /// Size of the whole value, bytes.
    pub payload_bytes: usize,
    /// True when `payload` was cut.
    pub truncated: bool,
    /// The stored task key the record names ([`named_task`]), read from the
    /// whole value: whose dead letter it is. Not shown: `key` says it.
    #[serde(skip)]
    pub task: Option<String>,
}

impl DeadLetter {
    /// The tenant the dead letter belongs to: that of the task it names;
    /// `None` (the cluster's only) when it names none.
    pub fn tenant(&self) -> Option<&str> {
        self.task.as_deref().and_then(crate::auth::tenant_of_named_key)
    }
}

/// The stored task key a record names: its key when that is a task key
/// (the worker keeps the original record's key, which yadtq sets to the
/// stored key), else the `id` string of its value when the value is a JSON
/// object with one.
pub(crate) fn named_task(key: Option<&str>, value: Option<&[u8]>) -> Option<String> {
    let valid = |k: &str| crate::auth::tenant_of_named_key(k).is_some();
    if let Some(k) = key.filter(|k| valid(k)) {
        return Some(k.to_string());
    }
    let value: serde_json::Value = serde_json::from_slice(value?).ok()?;
    value.get("id")?.as_str().filter(|k| valid(k)).map(str::to_string)
}

/// A page of dead letters, newest first, and what the topic holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetters {
    /// The dead-letter topic's name.
    pub topic: String,
    /// Records the topic still holds (retention deletes the oldest), over all partitions.
    pub retained: i64,
    /// The records read, newest first.
    pub dead_letters: Vec<DeadLetter>,
    /// Pass as `before` to read on: the page is full, or the read stopped
    /// at its budget (`--dead-letter-scan-records`, or half the read
    /// timeout) before the start of the topic, which happens when the
    /// caller's filter keeps few records (a tenant's among many); the page
    /// may then hold fewer records than asked, even none. Null when nothing
    /// older is left. With one partition (yadtq creates the topic so) pages
    /// neither overlap nor skip a record; with several, a page may repeat
    /// some of the previous one's older records.
    pub next_before: Option<i64>,
}

/// A consumer that never joins a group: `group` only names the group whose
/// committed offsets [`consumer_lag`] fetches.
fn reader(cfg: &CommonConfig, group: &str) -> anyhow::Result<BaseConsumer> {
    let mut c = client_config(cfg, "yadtq-inspect");
    c.set("group.id", group).set("enable.auto.commit", "false").set("enable.auto.offset.store", "false");
    Ok(apply_user_options(cfg, &mut c).create()?)
}

/// The partitions of `topic`, by id; `None` when the broker says the topic
/// does not exist (or reports another error for it).
///
/// Errors when the broker does not answer within `timeout`.
fn partitions(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> anyhow::Result<Option<Vec<i32>>> {
    let md = consumer.fetch_metadata(Some(topic), timeout)?;
    let Some(t) = md.topics().first().filter(|t| t.error().is_none()) else { return Ok(None) };
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(Some(ids))
}

/// How much one read of the dead-letter topic may scan before it answers
/// with what it kept and a cursor ([`DeadLetters::next_before`]).
#[derive(Debug, Clone, Copy)]
pub struct ScanBudget {
    /// Records read at most, over all partitions.
    pub records: usize,
    /// The whole read's bound; no new window is read past half of it, so a
    /// slow broker yields a partial page rather than a timeout.
    pub timeout: Duration,
}

/// Reads the dead-letter topic: for each partition (only `partition` when
/// given), the newest `limit` records before offset `before` (the end when
/// `None`) that `keep` accepts, merged newest first (by timestamp, then
/// offset) and cut to `limit`. Values longer than `preview` bytes are cut.
/// Blocking: call it from `spawn_blocking`.
///
/// A partition is read back a window at a time until `limit` records are
/// kept, its start is reached or the `budget` is spent, so a filter that
/// keeps few records (one tenant's among many) still fills its page, or
/// answers in time with a cursor to go on from.
///
/// Errors when the broker does not answer within `budget.timeout`, or the
/// topic does not exist. A `partition` the topic lacks reads nothing.
pub fn dead_letters(
    cfg: &CommonConfig,
    partition: Option<i32>,
    before: Option<i64>,
    limit: usize,
    preview: usize,
    budget: ScanBudget,
    keep: impl Fn(&DeadLetter) -> bool,
) -> anyhow::Result<DeadLetters> {
    let names = cfg.names();
    let topic = names.dlq_topic();
    let consumer = reader(cfg, &format!("{}-inspect", names.group_id()))?;
    let started = Instant::now();
    let deadline = started + budget.timeout;
    let all = partitions(&consumer, &topic, budget.timeout)?.ok_or_else(|| anyhow::anyhow!("no topic {topic}"))?;
    // A partition the topic lacks is a filter matching nothing, like any other.
    let chosen: Vec<i32> = all.iter().copied().filter(|p| partition.is_none_or(|want| want == *p)).collect();
    let (mut retained, mut scanned) = (0, 0usize);
    let mut out = Vec::new();
    // Per partition read: where it stopped, just above the newest record it
    // kept, and whether older records are left (unread, or cut from the page).
    let mut reads: Vec<(i32, i64, Option<i64>, bool)> = Vec::new();
    for p in &all {
        let (low, high) = consumer.fetch_watermarks(&topic, *p, left(deadline))?;
        retained += high - low;
        if !chosen.contains(p) {
            continue;
        }
        let (mut end, mut kept) = (before.map_or(high, |b| b.clamp(low, high)), Vec::new());
        while kept.len() < limit && end > low {
            if scanned >= budget.records || started.elapsed() >= budget.timeout / 2 {
                break;
            }
            let start = (end - limit as i64).max(low);
            kept.extend(
                read_ranges(&consumer, &topic, &[(*p, start, end)], preview, deadline)?.into_iter().filter(&keep),
            );
            scanned += (end - start) as usize;
            end = start;
        }
        kept.sort_by_key(|d| std::cmp::Reverse(d.offset));
        let cut = kept.len() > limit;
        kept.truncate(limit);
        reads.push((*p, end, kept.first().map(|d| d.offset + 1), cut || end > low));
        out.extend(kept);
    }
    out.sort_by_key(|d| std::cmp::Reverse((d.timestamp, d.offset)));
    let merged_cut: Vec<i32> = out.iter().skip(limit).map(|d| d.partition).collect();
    out.truncate(limit);
    // A partition with older records left resumes below its oldest record on
    // the page; when none made it, above its newest kept one, or else where
    // its read stopped. `before` applies to every partition: the newest of
    // those points skips nothing.
    let next_before = reads
        .into_iter()
        .filter(|(p, _, _, left)| *left || merged_cut.contains(p))
        .map(|(p, end, newest_kept, _)| {
            out.iter().filter(|d| d.partition == p).map(|d| d.offset).min().or(newest_kept).unwrap_or(end)
        })
        .max();
    Ok(DeadLetters { topic, retained, dead_letters: out, next_before })
}

/// The dead letter at `partition`/`offset`, its value whole; `None` when the
/// topic does not hold that offset (never written, or deleted by retention).
/// Blocking, like [`dead_letters`].
///
/// Errors when the broker does not answer within `timeout`.
pub fn dead_letter(
    cfg: &CommonConfig,
    partition: i32,
    offset: i64,
    timeout: Duration,
) -> anyhow::Result<Option<DeadLetter>> {
    let names = cfg.names();
    let topic = names.dlq_topic();
    let consumer = reader(cfg, &format!("{}-inspect", names.group_id()))?;
    let deadline = Instant::now() + timeout;
    if !partitions(&consumer, &topic, timeout)?.is_some_and(|all| all.contains(&partition)) {
        return Ok(None);
    }
    let (low, high) = consumer.fetch_watermarks(&topic, partition, left(deadline))?;
    if !(low..high).contains(&offset) {
        return Ok(None);
    }
    let read = read_ranges(&consumer, &topic, &[(partition, offset, offset + 1)], usize::MAX, deadline)?;
    // A compacted or transactional topic may skip offsets: the first record
    // read may lie past the one asked for.
    Ok(read.into_iter().find(|d| d.offset == offset))
}

fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

/// Reads `[start, end)` of each `(partition, start, end)`.
fn read_ranges(
    consumer: &BaseConsumer,
    topic: &str,
    ranges: &[(i32, i64, i64)],
    preview: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<DeadLetter>> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    for (p, start, _) in ranges {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*start))?;
    }
    consumer.assign(&tpl)?;
    let mut open: BTreeMap<i32, i64> = ranges.iter().map(|(p, _, end)| (*p, *end)).collect();
    let mut out = Vec::new();
    while !open.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "the dead-letter topic did not answer in time");
        let Some(next) = consumer.poll(left(deadline).min(Duration::from_millis(200))) else { continue };
        let m = next?;
        let Some(end) = open.get(&m.partition()).copied() else { continue };
        if m.offset() + 1 >= end {
            open.remove(&m.partition());
        }
        if m.offset() >= end {
            continue;
        }
        let header = |name: &str| {
            m.headers().and_then(|h| {
                h.iter().find(|x| x.key == name).and_then(|x| x.value).map(|v| String::from_utf8_lossy(v).into_owned())
            })
        };
        let value = m.payload();
        let cut = value.map(|v| &v[..v.len().min(preview)]);
        out.push(DeadLetter {
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis().and_then(DateTime::from_timestamp_millis),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            reason: header(REASON_HEADER),
            origin: header(ORIGIN_HEADER),
            payload: cut.map(|v| String::from_utf8_lossy(v).into_owned()),
            payload_bytes: value.map_or(0, <[u8]>::len),
            truncated: value.is_some_and(|v| v.len() > preview),
            task: named_task(m.key().and_then(|k| std::str::from_utf8(k).ok()), value),
        });
    }
    Ok(out)
}

/// Records on each queue's topics (`queues`: each queue with its topics, the
/// shared one and its dedicated tenants': [`crate::tenants::Routes::topics_of`])
/// that the workers' group has not committed yet, summed over the topics'
/// partitions (a partition the group never committed counts from its low
/// watermark), by queue. Blocking, like
/// [`dead_letters`]. The committed offset trails what is done by up to the
/// workers' commit interval, so a drained queue reads a few records of lag
/// for that long.
///
/// Errors when the broker does not answer within `timeout` (the whole read's bound).
pub fn consumer_lag(
    cfg: &CommonConfig,
    queues: &[(String, Vec<String>)],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let names = cfg.names();
    let consumer = reader(cfg, &names.group_id())?;
    let deadline = Instant::now() + timeout;
    let mut tpl = TopicPartitionList::new();
    let mut marks = BTreeMap::new();
    for topic in queues.iter().flat_map(|(_, topics)| topics) {
        // A topic that does not exist (yet) has no lag to report: a queue
        // without any is absent from the answer.
        let Some(ids) = partitions(&consumer, topic, left(deadline))? else { continue };
        for p in ids {
            let (low, high) = consumer.fetch_watermarks(topic, p, left(deadline))?;
            marks.insert((topic.clone(), p), (low, high));
            tpl.add_partition(topic, p);
        }
    }
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let committed = consumer.committed_offsets(tpl, left(deadline))?;
    let mut by_topic: BTreeMap<String, i64> = BTreeMap::new();
    for e in committed.elements() {
        let (low, high) = marks[&(e.topic().to_string(), e.partition())];
        let done = match e.offset() {
            Offset::Offset(o) => o.clamp(low, high),
            _ => low,
        };
        *by_topic.entry(e.topic().to_string()).or_default() += high - done;
    }
    let lag_of = |topics: &[String]| {
        let known: Vec<i64> = topics.iter().filter_map(|t| by_topic.get(t).copied()).collect();
        (!known.is_empty()).then(|| known.iter().sum())
    };
    Ok(queues.iter().filter_map(|(q, topics)| Some((q.clone(), lag_of(topics)?))).collect())
}
