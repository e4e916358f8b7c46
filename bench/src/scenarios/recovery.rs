//! Scenario 6: SIGKILL a worker that holds in-flight `sleep 30` tasks and
//! measure, on the database clock, how long until each of them is running
//! again on the other worker (its next attempt's `started_at` in
//! `task_attempts` − `now()` read just before the kill). Default liveness
//! timings: heartbeat 2 s, dead after D = 10 s, maintenance period P = 1 s.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::LABEL_RECOVERY;
use crate::client::submit_many;
use crate::report::{Results, Unit};
use crate::stack::Bench;
use crate::Args;

pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    // The launcher sets the default timings (crate::stack::DEFAULT_TIMINGS) on every process.
    let b = Bench::new("recovery", a).await?;
    let gw = b.gateway().await;
    let mut workers = b.workers(2, a.concurrency).await;
    let m = a.recovery_tasks;
    let ids = submit_many(&b.http, &gw.base, m, m, |_| r#"{"task":"sleep","args":[30]}"#.to_string()).await?;

    // Wait until every task is running, then pick the worker holding the most.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (victim, held): (uuid::Uuid, i64) = loop {
        let processing: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tasks WHERE id = ANY($1) AND status = 'processing'")
                .bind(&ids)
                .fetch_one(b.db())
                .await?;
        if processing == m as i64 {
            break sqlx::query_as(
                "SELECT worker_id, count(*) FROM tasks WHERE id = ANY($1) GROUP BY worker_id ORDER BY 2 DESC LIMIT 1",
            )
            .bind(&ids)
            .fetch_one(b.db())
            .await?;
        }
        if Instant::now() > deadline {
            bail!("only {processing} of {m} sleep tasks processing after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let victim_pid: i32 =
        sqlx::query_scalar("SELECT pid FROM workers WHERE id = $1").bind(victim).fetch_one(b.db()).await?;
    let victim_proc =
        workers.iter_mut().find(|w| w.pid() as i32 == victim_pid).context("victim worker is one of ours")?;
    let victim_ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tasks WHERE id = ANY($1) AND worker_id = $2")
        .bind(&ids)
        .bind(victim)
        .fetch_all(b.db())
        .await?;

    let killed_at: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8").fetch_one(b.db()).await?;
    victim_proc.kill9();

    let deadline = Instant::now() + Duration::from_secs(90);
    let samples: Vec<f64> = loop {
        let rows: Vec<(f64,)> = sqlx::query_as(
            "SELECT extract(epoch FROM min(a.started_at))::float8 FROM task_attempts a
             WHERE a.task_id = ANY($1) AND a.worker_id <> $2 GROUP BY a.task_id",
        )
        .bind(&victim_ids)
        .bind(victim)
        .fetch_all(b.db())
        .await?;
        if rows.len() == victim_ids.len() {
            break rows.into_iter().map(|(t,)| t - killed_at).collect();
        }
        if Instant::now() > deadline {
            bail!("{} of {} tasks rescued 90 s after the kill", rows.len(), victim_ids.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    r.extend(LABEL_RECOVERY, "SIGKILL → processing on the other worker (every task)", Unit::Secs, &samples);
    r.target(LABEL_RECOVERY, "SIGKILL → processing on the other worker (every task)", Unit::Secs, 11.0, false);
    r.add(LABEL_RECOVERY, "tasks held by the killed worker", Unit::Count, held as f64);

    drop(workers);
    drop(gw);
    b.cleanup().await;
    Ok(())
}
