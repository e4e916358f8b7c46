//! Scenario 7: PostgreSQL alone, as a ceiling for end to end. The bench calls
//! the services' own store functions, in the services' batch sizes, with no
//! HTTP, Kafka, gateway or worker process: `insert_each` (the gateway's
//! grouped insert), `claim_tasks` and `record_outcomes` (a worker's batches),
//! each with its commit and NOTIFY. Tasks per second and PostgreSQL's CPU per
//! task give what the database alone costs a task on this machine.

use std::time::{Duration, Instant};

use anyhow::Result;
use yadtq_core::store::{self, NewTask, Outcome};

use super::{pg_counters, LABEL_PG_PATH};
use crate::procfs::CpuSnapshot;
use crate::report::{Results, Unit};
use crate::stack::Bench;
use crate::Args;

/// Concurrent loops, like the gateway's and two workers' concurrent batches.
const LOOPS: usize = 8;
/// Tasks per insert, claim and outcome statement (a worker's batch is up to its concurrency).
const BATCH: usize = 16;

/// One measured run of `--pg-tasks` tasks.
pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    let b = Bench::new("pgpath", a).await?;
    let pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(LOOPS as u32 * 2).connect(&b.stack.database_url).await?;
    let per_loop = a.pg_tasks.div_ceil(LOOPS * BATCH);
    let n = per_loop * LOOPS * BATCH;
    // Warm the connections and plans on a few batches first.
    one_pass(&pool, 0, 4).await?;
    let named = [("bench client (this process)", std::process::id())];
    let (cpu0, pg0) = (CpuSnapshot::take(&named), pg_counters(b.db()).await?);
    let t0 = Instant::now();
    let loops: Vec<_> = (0..LOOPS)
        .map(|l| {
            let pool = pool.clone();
            tokio::spawn(async move { one_pass(&pool, l + 1, per_loop).await })
        })
        .collect();
    for l in loops {
        l.await??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = CpuSnapshot::take(&named);
    pool.close().await;
    // The backends flush their statistics as they close.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let pg1 = pg_counters(b.db()).await?;
    let rate = n as f64 / secs;
    r.add(LABEL_PG_PATH, "tasks/s (insert, claim, outcome)", Unit::PerSec, rate);
    for (group, pct) in cpu0.since(&cpu1) {
        if group == "postgres" {
            r.add(LABEL_PG_PATH, "postgres CPU per task (ms)", Unit::Ms, pct / 100.0 / rate * 1000.0);
        }
        r.add(LABEL_PG_PATH, &group, Unit::CorePct, pct);
    }
    r.add(LABEL_PG_PATH, "PostgreSQL rows written per task", Unit::Count, (pg1.rows - pg0.rows) / n as f64);
    b.cleanup().await;
    Ok(())
}

/// `batches` rounds of insert → claim → success for `BATCH` fresh tasks.
async fn one_pass(pool: &sqlx::PgPool, lane: usize, batches: usize) -> Result<()> {
    let worker = uuid::Uuid::new_v4();
    let result = Outcome::Success("[1]".into());
    for _ in 0..batches {
        let tasks: Vec<NewTask> = (0..BATCH).map(|i| echo(lane, i)).collect();
        let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
        store::insert_each(pool, &tasks).await?;
        let claimed = store::claim_tasks(pool, &ids, worker).await?;
        anyhow::ensure!(claimed.iter().all(Option::is_some), "a fresh task was not claimable");
        let outcomes: Vec<_> = ids.iter().map(|id| (id.as_str(), 1, &result)).collect();
        let recorded = store::record_outcomes(pool, worker, &outcomes).await?;
        anyhow::ensure!(recorded.iter().all(|ok| *ok), "an outcome was not recorded");
    }
    Ok(())
}

/// An `echo` task as the gateway would insert it (defaults of `POST /tasks`).
fn echo(lane: usize, i: usize) -> NewTask {
    NewTask {
        id: uuid::Uuid::new_v4().to_string(),
        name: "echo".into(),
        args: format!("[{lane}, {i}]"),
        kwargs: "{}".into(),
        queue: "default".into(),
        max_retries: 3,
        timeout_seconds: 300.0,
        run_at: None,
        retry_backoff: (None, None),
        request_hash: format!("bench-{lane}-{i}"),
    }
}
