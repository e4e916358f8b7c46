//! Prometheus metrics: one recorder per process (the `metrics` facade with
//! `metrics-exporter-prometheus`), rendered in the text exposition format by
//! the gateway's `/metrics` and a worker's admin listener. Label values are
//! bounded: routes are axum's matched paths, task names only those a worker
//! has a handler for, never task ids.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered by a gateway: counter, labels `method`, `route`, `status`.
pub const HTTP_REQUESTS: &str = "yadtq_http_requests_total";
/// Time to answer an HTTP request, seconds: histogram, labels `method`,
/// `route`, `status` (the class: `1xx` … `5xx`, so each route has at most
/// five sets of buckets; the exact code is on [`HTTP_REQUESTS`]).
pub const HTTP_DURATION: &str = "yadtq_http_request_duration_seconds";
/// Tasks accepted by a gateway (202): counter, label `queue`.
pub const TASKS_SUBMITTED: &str = "yadtq_tasks_submitted_total";
/// Attempts a worker finished: counter, labels `task`, `queue` and `outcome`
/// (`success`, `failed`, `retry`, `cancelled`, `aborted`).
pub const TASKS_FINISHED: &str = "yadtq_tasks_finished_total";
/// Time a handler ran, seconds: histogram, label `task`.
pub const TASK_DURATION: &str = "yadtq_task_duration_seconds";
/// Attempts running on a worker now: gauge.
pub const WORKER_IN_FLIGHT: &str = "yadtq_worker_in_flight";
/// Kafka partitions a worker owns now: gauge.
pub const WORKER_PARTITIONS: &str = "yadtq_worker_partitions";
/// 1 while a worker is ready (joined its group, not fenced), else 0: gauge.
pub const WORKER_READY: &str = "yadtq_worker_ready";
/// 1 while a worker is fenced, else 0: gauge.
pub const WORKER_FENCED: &str = "yadtq_worker_fenced";
/// Attempts a worker claimed (and so started): counter, labels `task`, `queue`.
pub const TASKS_STARTED: &str = "yadtq_tasks_started_total";
/// Time a task waited for a worker, seconds, from the moment its Kafka record
/// was produced (submission, the scheduler's promotion at `run_at`, a requeue)
/// to its claim: histogram, label `queue`.
pub const TASK_QUEUE_WAIT: &str = "yadtq_task_queue_wait_seconds";
/// Tasks the rescuer took from dead or stopped workers: counter, label
/// `result` (`requeued`, `failed`); counted by the leader that moved them.
pub(crate) const TASKS_RESCUED: &str = "yadtq_tasks_rescued_total";
/// Records of a tenant a worker does not serve (sent by an old route, when
/// the dedicated tenants changed) that it sent back to the publisher instead
/// of running: counter, label `queue`.
pub const TASKS_SENT_BACK: &str = "yadtq_tasks_sent_back_total";
/// Times a worker fenced itself (no heartbeat for the fence threshold): counter.
pub const WORKER_FENCINGS: &str = "yadtq_worker_fencings_total";
/// Records a worker sent to the dead-letter topic: counter, label `result`
/// (`written`; `lost` when the dead-letter write itself failed).
pub const DEAD_LETTERS: &str = "yadtq_dead_letters_total";
/// Handler slots of a worker (`--concurrency`): gauge; busy slots are
/// [`WORKER_IN_FLIGHT`].
pub const WORKER_CONCURRENCY: &str = "yadtq_worker_concurrency";
/// Seconds since the worker's last successful heartbeat (monotonic clock),
/// computed at each scrape: gauge.
pub const WORKER_HEARTBEAT_AGE: &str = "yadtq_worker_heartbeat_age_seconds";
/// 1 on the process holding the maintenance lease, 0 on every other gateway
/// and worker: gauge.
pub(crate) const LEADER: &str = "yadtq_leader";
/// Messages behind the partition's high watermark for this worker's
/// consumer (librdkafka statistics, every few seconds): gauge, labels
/// `topic`, `partition`; only partitions the worker owns.
pub const CONSUMER_LAG: &str = "yadtq_consumer_lag";
/// Tasks by status per queue, sampled by the leader from PostgreSQL: gauge,
/// labels `queue`, `status`. Only the current leader exports it.
pub(crate) const QUEUE_TASKS: &str = "yadtq_queue_tasks";
/// Age of the oldest `queued` task per queue, seconds (since it became due:
/// the later of `created_at` and `run_at`), sampled by the leader; 0 when
/// none is queued: gauge, label `queue`. Only the current leader exports it.
pub(crate) const QUEUE_OLDEST_AGE: &str = "yadtq_queue_oldest_queued_age_seconds";
/// `queued` rows not yet sent to Kafka (the publisher's backlog), sampled by
/// the leader: gauge. Only the current leader exports it.
pub(crate) const PUBLISHER_BACKLOG: &str = "yadtq_publisher_backlog";
/// Workers alive (heartbeat within the dead-after threshold, database
/// clock, not stopped), sampled by the leader: gauge. Only the current
/// leader exports it.
pub(crate) const WORKERS_ALIVE: &str = "yadtq_workers_alive";
/// Unix time of the leader's last successful sample, seconds: gauge. Only
/// the current leader exports it.
pub(crate) const LEADER_SAMPLED_AT: &str = "yadtq_leader_sampled_timestamp_seconds";
/// Workflow nodes the leader's repair pass moved out of `waiting` (their
/// parents had all finished, but no fan-in had released them): counter.
/// The safety net; 0 in normal runs.
pub(crate) const WORKFLOW_REPAIRS: &str = "yadtq_workflow_repairs_total";
/// Workflows by status (`running`, `success`, `failed`, `cancelled`),
/// sampled by the leader: gauge, label `status`.
pub(crate) const WORKFLOWS: &str = "yadtq_workflows";
/// Fan-in latency, seconds: from a workflow node's last parent's
/// `finished_at` to the node's claim (database clock), observed by the
/// worker that claims it: histogram.
pub const WORKFLOW_FAN_IN: &str = "yadtq_workflow_fan_in_seconds";

/// Histogram buckets for durations, seconds (1 ms to 5 min).
const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// How often recorded histogram samples are folded into their buckets, so
/// memory stays bounded in a process nobody scrapes.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's recorder on first call and returns the handle that
/// renders it; later calls return the same handle. When the program already
/// installed another `metrics` recorder (a library user's), that one keeps
/// receiving yadtq's metrics and the handle renders nothing (logged).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: yadtq's /metrics stays empty");
            }
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("yadtq-metrics".into()).spawn(move || loop {
                std::thread::sleep(UPKEEP);
                upkeep.run_upkeep();
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the metrics upkeep thread");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route and status");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route and status class"
    );
    describe_counter!(TASKS_SUBMITTED, "Tasks accepted (202), by queue");
    describe_counter!(TASKS_FINISHED, "Attempts finished by this worker, by task, queue and outcome");
    describe_histogram!(TASK_DURATION, Unit::Seconds, "Time a handler ran, by task");
    describe_gauge!(WORKER_IN_FLIGHT, "Attempts running on this worker");
    describe_gauge!(WORKER_PARTITIONS, "Kafka partitions this worker owns");
    describe_gauge!(WORKER_READY, "1 while this worker is ready (joined its group, not fenced)");
    describe_gauge!(WORKER_FENCED, "1 while this worker is fenced");
    describe_counter!(TASKS_STARTED, "Attempts this worker claimed, by task and queue");
    describe_histogram!(TASK_QUEUE_WAIT, Unit::Seconds, "Time from a task's Kafka record to its claim, by queue");
    describe_counter!(TASKS_RESCUED, "Tasks the rescuer took from dead or stopped workers, by result");
    describe_counter!(WORKER_FENCINGS, "Times this worker fenced itself");
    describe_counter!(TASKS_SENT_BACK, "Records of tenants this worker does not serve, sent back to the publisher");
    describe_counter!(DEAD_LETTERS, "Invalid records sent to the dead-letter topic, by result");
    describe_gauge!(WORKER_CONCURRENCY, "Handler slots of this worker (--concurrency)");
    describe_gauge!(WORKER_HEARTBEAT_AGE, Unit::Seconds, "Seconds since this worker's last successful heartbeat");
    describe_gauge!(LEADER, "1 on the maintenance leader, else 0");
}

/// Outcomes of [`TASKS_FINISHED`].
pub(crate) const OUTCOMES: [&str; 5] = ["success", "failed", "retry", "cancelled", "aborted"];

/// Registers a worker's counters at 0 for every label set it can produce
/// (each handler's task name, each served queue), so the first event counts
/// in `rate()` and `increase()` (a series that appears at 1 increases by 0).
pub fn zero_worker_series(tasks: &[String], queues: &[String]) {
    for task in tasks {
        for queue in queues {
            metrics::counter!(TASKS_STARTED, "task" => task.clone(), "queue" => queue.clone()).increment(0);
            for outcome in OUTCOMES {
                metrics::counter!(TASKS_FINISHED, "task" => task.clone(), "queue" => queue.clone(), "outcome" => outcome)
                    .increment(0);
            }
        }
    }
    metrics::counter!(DEAD_LETTERS, "result" => "written").increment(0);
    metrics::counter!(DEAD_LETTERS, "result" => "lost").increment(0);
    metrics::counter!(WORKER_FENCINGS).increment(0);
    for queue in queues {
        metrics::counter!(TASKS_SENT_BACK, "queue" => queue.clone()).increment(0);
    }
}

/// Registers the maintenance counters at 0 (see [`zero_worker_series`]),
/// and [`LEADER`] at 0 until the lease is won.
pub(crate) fn zero_maintenance_series() {
    metrics::counter!(WORKFLOW_REPAIRS).increment(0);
    metrics::counter!(TASKS_RESCUED, "result" => "requeued").increment(0);
    metrics::counter!(TASKS_RESCUED, "result" => "failed").increment(0);
    metrics::gauge!(LEADER).set(0.0);
}

/// One sample of a gauge family exported outside the `metrics` facade
/// (see [`set_samples`]): label pairs and the value.
pub type Sample = (Vec<(&'static str, String)>, f64);

/// Gauge families whose series must disappear at once (the leader's samples
/// when it loses the lease, lag of partitions no longer owned), which the
/// `metrics` facade cannot do: name -> (help, source -> samples).
type Families = BTreeMap<&'static str, (&'static str, BTreeMap<String, Vec<Sample>>)>;

fn families() -> &'static Mutex<Families> {
    static F: OnceLock<Mutex<Families>> = OnceLock::new();
    F.get_or_init(Default::default)
}

/// Replaces the samples `source` contributes to gauge family `name`
/// (rendered by [`render`]); an empty `samples` removes them.
pub fn set_samples(name: &'static str, help: &'static str, source: &str, samples: Vec<Sample>) {
    let mut f = families().lock();
    let family = f.entry(name).or_insert_with(|| (help, BTreeMap::new()));
    if samples.is_empty() {
        family.1.remove(source);
    } else {
        family.1.insert(source.to_owned(), samples);
    }
}

/// Removes every sample `source` contributes, in all families, and its
/// deadline ([`set_source_deadline`]).
pub(crate) fn clear_samples(source: &str) {
    for family in families().lock().values_mut() {
        family.1.remove(source);
    }
    deadlines().lock().remove(source);
}

fn deadlines() -> &'static Mutex<BTreeMap<String, Instant>> {
    static D: OnceLock<Mutex<BTreeMap<String, Instant>>> = OnceLock::new();
    D.get_or_init(Default::default)
}

/// From `until` on, [`render`] leaves out `source`'s samples (until a later
/// deadline is set). A source without a deadline is always rendered.
pub(crate) fn set_source_deadline(source: &str, until: Instant) {
    deadlines().lock().insert(source.to_owned(), until);
}

/// The process's metrics in the text exposition format: the `metrics`
/// recorder's ([`install`]) followed by the families of [`set_samples`].
pub fn render() -> String {
    let mut out = install().render();
    let now = Instant::now();
    let expired: Vec<String> =
        deadlines().lock().iter().filter(|(_, until)| **until <= now).map(|(source, _)| source.clone()).collect();
    let f = families().lock();
    for (name, (help, all)) in f.iter() {
        let sources: BTreeMap<&String, &Vec<Sample>> = all.iter().filter(|(s, _)| !expired.contains(s)).collect();
        if sources.values().all(|v| v.is_empty()) {
            continue;
        }
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, value) in sources.values().flat_map(|v| v.iter()) {
            out.push_str(name);
            if !labels.is_empty() {
                let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                out.push('{');
                out.push_str(&pairs.join(","));
                out.push('}');
            }
            out.push_str(&format!(" {value}\n"));
        }
    }
    out
}

/// Escapes a label value for the text format (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_render_and_vanish_with_their_source() {
        set_samples("yadtq_test_gauge", "A test gauge", "a", vec![(vec![("queue", "q\"1".into())], 2.0)]);
        set_samples("yadtq_test_gauge", "A test gauge", "b", vec![(vec![("queue", "q2".into())], 3.5)]);
        let text = render();
        assert_eq!(text.matches("# TYPE yadtq_test_gauge gauge").count(), 1, "{text}");
        assert!(text.contains("yadtq_test_gauge{queue=\"q\\\"1\"} 2\n"), "{text}");
        assert!(text.contains("yadtq_test_gauge{queue=\"q2\"} 3.5\n"), "{text}");
        clear_samples("a");
        let text = render();
        assert!(!text.contains("q\\\"1"), "{text}");
        set_source_deadline("b", Instant::now());
        assert!(!render().contains("yadtq_test_gauge"), "past its deadline");
        set_source_deadline("b", Instant::now() + std::time::Duration::from_secs(60));
        assert!(render().contains("yadtq_test_gauge{queue=\"q2\"} 3.5\n"));
        set_samples("yadtq_test_gauge", "A test gauge", "b", vec![]);
        assert!(!render().contains("yadtq_test_gauge"));
    }
}
