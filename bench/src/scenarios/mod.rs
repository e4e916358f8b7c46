//! One module per scenario. Each starts its own stack (fresh database and
//! Kafka namespace), adds its figures to a [`Results`](crate::report::Results)
//! under the labels below, and tears the stack down.

pub mod celery;
pub mod drain;
pub mod e2e;
pub mod limits;
pub mod listing;
pub mod pg_path;
pub mod rate;
pub mod recovery;
pub mod submit;

use anyhow::Result;
use sqlx::PgPool;

use crate::stats::{percentile, sorted};
use crate::Args;

/// Row labels, shared by the yadtq and Celery figures so their ratio can be printed.
pub fn label_submit(a: &Args) -> String {
    format!("1 submit: {} clients × {} s", a.clients, a.submit_secs)
}
pub fn label_submit_batch(a: &Args) -> String {
    format!("1 submit batch ({}/request)", a.batch_size)
}
pub fn label_submit_rate(a: &Args) -> String {
    format!("1 submit @ {} req/s × {} s", a.submit_rate, a.submit_secs)
}
pub fn label_drain(a: &Args) -> String {
    format!("2 drain: {} queued echo, {}×{} workers", a.drain_tasks, a.workers, a.concurrency)
}
pub fn label_e2e(a: &Args) -> String {
    format!("3 end to end: {} echo, {}×{} workers", a.e2e_tasks, a.workers, a.concurrency)
}
/// Scenario 3 with the tasks submitted through `POST /tasks/batch`.
pub fn label_e2e_batch(a: &Args) -> String {
    format!(
        "3 end to end, batch submit ({}/request): {} echo, {}×{} workers",
        a.batch_size, a.e2e_tasks, a.workers, a.concurrency
    )
}
pub fn label_rate(a: &Args) -> String {
    format!("4 fixed rate: {} tasks/s × {} s", a.rate, a.rate_secs)
}
pub const LABEL_FOOTPRINT: &str = "5 footprint";
pub fn label_cpu(a: &Args) -> String {
    format!("5 CPU during drain ({} tasks)", a.drain_tasks)
}
/// CPU split while scenario 3 runs (`label` is the scenario's own label).
pub fn label_cpu_e2e(label: &str) -> String {
    format!("5 CPU during {}", label.trim_start_matches("3 "))
}
pub const LABEL_RECOVERY: &str = "6 recovery after SIGKILL (default timings)";
/// Scenario 7: a task's statements on PostgreSQL alone.
pub fn label_pg_path() -> String {
    format!("7 PostgreSQL alone: insert, claim, outcome ({}-task batches, {} loops)", pg_path::BATCH, pg_path::LOOPS)
}

/// Scenario 8: `GET /tasks` on a large table, and submits while it is listed.
pub fn label_listing(a: &Args) -> String {
    format!("8 listing at {} rows", a.listing_rows)
}

/// PostgreSQL write counters: rows of this database, WAL of the cluster.
pub struct PgCounters {
    /// Rows inserted, updated and deleted in this database.
    pub rows: f64,
    /// WAL position of the whole cluster, bytes.
    pub wal: f64,
}

pub async fn pg_counters(db: &PgPool) -> Result<PgCounters> {
    let (rows, wal): (f64, f64) = sqlx::query_as(
        "SELECT (tup_inserted + tup_updated + tup_deleted)::float8,
                (pg_current_wal_lsn() - '0/0'::pg_lsn)::float8
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(db)
    .await?;
    Ok(PgCounters { rows, wal })
}

/// Sorted per-task latencies in ms of `expr` (an interval expression over
/// `tasks`) for the tasks matching `filter`.
pub async fn db_latencies_ms(db: &PgPool, expr: &str, filter: &str) -> Result<Vec<f64>> {
    let q = format!("SELECT (extract(epoch FROM {expr}) * 1000)::float8 FROM tasks WHERE {filter}");
    let v: Vec<Option<f64>> = sqlx::query_scalar(&q).fetch_all(db).await?;
    Ok(sorted(v.into_iter().flatten().collect()))
}

/// p50 / p99 of sorted samples.
pub fn p50_p99(s: &[f64]) -> (f64, f64) {
    (percentile(s, 0.5), percentile(s, 0.99))
}
