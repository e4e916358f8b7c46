//! Prometheus metrics: one recorder per process (the `metrics` facade with
//! `metrics-exporter-prometheus`), rendered in the text exposition format by
//! the gateway's `/metrics` and a worker's admin listener. Label values are
//! bounded: routes are axum's matched paths, task names only those a worker
//! has a handler for, never task ids.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests answered by a gateway: counter, labels `method`, `route`, `status`.
pub const HTTP_REQUESTS: &str = "yadtq_http_requests_total";
/// Time to answer an HTTP request, seconds: histogram, labels `method`, `route`.
pub const HTTP_DURATION: &str = "yadtq_http_request_duration_seconds";
/// Tasks accepted by a gateway (202): counter, label `queue`.
pub const TASKS_SUBMITTED: &str = "yadtq_tasks_submitted_total";
/// Attempts a worker finished: counter, labels `task` and `outcome`
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
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request");
    describe_counter!(TASKS_SUBMITTED, "Tasks accepted (202), by queue");
    describe_counter!(TASKS_FINISHED, "Attempts finished by this worker, by task and outcome");
    describe_histogram!(TASK_DURATION, Unit::Seconds, "Time a handler ran, by task");
    describe_gauge!(WORKER_IN_FLIGHT, "Attempts running on this worker");
    describe_gauge!(WORKER_PARTITIONS, "Kafka partitions this worker owns");
    describe_gauge!(WORKER_READY, "1 while this worker is ready (joined its group, not fenced)");
    describe_gauge!(WORKER_FENCED, "1 while this worker is fenced");
}

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
