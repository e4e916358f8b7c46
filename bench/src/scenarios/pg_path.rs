//! Scenario 7: PostgreSQL alone, as a ceiling for end to end. The bench calls
//! the services' own store functions in the services' batch sizes, with no
//! HTTP, Kafka, gateway or worker process: `insert_each` (the gateway's
//! grouped insert, one commit), then `claim` and `record_outcomes` (a
//! worker's batches, each with its commit and NOTIFY). Left out: the gateway's
//! delayed publish mark (usually a no-op by then, the claim stamps
//! `published_at`), the long-poll reads and the heartbeats. Tasks per second
//! and PostgreSQL's CPU per task give what the database alone costs a task on
//! this machine.

use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinSet;
use yadtq_core::names::TaskKey;
use yadtq_core::store::tasks::{self as store, AttemptOutcomeRecord, NewTask, Outcome, Recorded};
use yadtq_tests::echo_task;

use super::{label_pg_path, pg_counters};
use crate::procfs::CpuSnapshot;
use crate::report::{Results, Unit};
use crate::stack::Bench;
use crate::Args;

/// Concurrent loops, each one statement at a time (the services run up to
/// ~12 batch statements at once: grouped inserts, two workers' claims and
/// outcomes).
pub const LOOPS: usize = 8;
/// Tasks per insert, claim and outcome statement (a worker's batch is up to its concurrency).
pub const BATCH: usize = 16;
/// Batches each loop runs before the measurement (connections, plans).
const WARM_UP_BATCHES: usize = 4;

/// One measured run of `--pg-tasks` tasks (rounded up to a multiple of
/// `LOOPS × BATCH`).
pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    let label = label_pg_path();
    let b = Bench::new("pgpath", a).await?;
    let pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(LOOPS as u32 * 2).connect(&b.stack.database_url).await?;
    let per_loop = a.pg_tasks.div_ceil(LOOPS * BATCH).max(1);
    let n = per_loop * LOOPS * BATCH;
    // Every loop opens its connection and plans its statements before the clock starts.
    all_loops(&pool, 0, WARM_UP_BATCHES).await?;
    flush_statistics(&pool).await?;
    let named = [("bench client (this process)", std::process::id())];
    let (cpu0, pg0) = (CpuSnapshot::take(&named), pg_counters(b.db()).await?);
    let t0 = Instant::now();
    all_loops(&pool, LOOPS, per_loop).await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = CpuSnapshot::take(&named);
    pool.close().await;
    // The backends flush their statistics as they close.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg1 = pg_counters(b.db()).await?;
    let rate = n as f64 / secs;
    r.add(&label, "tasks/s (insert, claim, outcome)", Unit::PerSec, rate);
    let split = cpu0.since(&cpu1);
    match split.iter().find(|(group, _)| group == "postgres") {
        Some((_, pct)) => r.add(&label, "postgres CPU per task", Unit::Ms, pct / 100.0 / rate * 1000.0),
        // A server on another machine (DATABASE_URL): its CPU cannot be read from here.
        None => r.skip(&label, "postgres CPU per task", "skipped: no postgres process visible on this machine"),
    }
    for (group, pct) in split {
        r.add(&label, &group, Unit::CorePct, pct);
    }
    r.add(&label, "PostgreSQL rows written per task", Unit::Count, (pg1.rows - pg0.rows) / n as f64);
    b.cleanup().await;
    Ok(())
}

/// `LOOPS` concurrent [`one_pass`]es of `batches` each, lanes from `first_lane`.
/// A failing loop stops the others (the set aborts them when dropped).
async fn all_loops(pool: &sqlx::PgPool, first_lane: usize, batches: usize) -> Result<()> {
    let mut loops = JoinSet::new();
    for l in 0..LOOPS {
        let pool = pool.clone();
        loops.spawn(async move { one_pass(&pool, first_lane + l, batches).await });
    }
    while let Some(done) = loops.join_next().await {
        done??;
    }
    Ok(())
}

/// Makes every pooled backend report its pending row counts, so the warm-up's
/// rows are not counted in the measurement: a backend flushes them at the end
/// of a transaction once a second has passed since its last flush.
async fn flush_statistics(pool: &sqlx::PgPool) -> Result<()> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut held = Vec::new();
    for _ in 0..pool.size() {
        let mut c = pool.acquire().await?;
        sqlx::query("SELECT 1").execute(&mut *c).await?;
        held.push(c);
    }
    Ok(())
}

/// `batches` rounds of insert → claim → success for `BATCH` fresh tasks.
async fn one_pass(pool: &sqlx::PgPool, lane: usize, batches: usize) -> Result<()> {
    let worker = uuid::Uuid::new_v4();
    let result = Outcome::Success("[1]".into());
    for _ in 0..batches {
        let tasks: Vec<NewTask> =
            (0..BATCH).map(|i| echo_task(uuid::Uuid::new_v4().to_string(), format!("[{lane}, {i}]"))).collect();
        let ids: Vec<TaskKey> = tasks.iter().map(NewTask::key).collect();
        store::insert_each(pool, &tasks).await?;
        let claimed = store::claim(pool, &ids, worker).await?;
        anyhow::ensure!(claimed.iter().all(|c| c.as_claimed().is_some()), "a fresh task was not claimable");
        let outcomes: Vec<_> = ids
            .iter()
            .map(|id| AttemptOutcomeRecord { task_id: id, attempt: 1, outcome: &result, limited: false })
            .collect();
        let recorded = store::record_outcomes(pool, worker, &outcomes).await?;
        anyhow::ensure!(recorded.iter().all(|r| *r == Recorded::Written), "an outcome was not recorded");
    }
    Ok(())
}
