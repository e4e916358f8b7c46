//! Scenario 3: with workers running, clients submit N echo tasks and wait for
//! every result the way a client does (long-polling `GET /tasks/{id}?wait=10`).
//! Throughput: N / (first submit → last result seen). Per-task latency:
//! finished_at − created_at (database clock). Measured twice: each task its
//! own `POST /tasks`, then the same N through `POST /tasks/batch`.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::limits::LimitVariant;
use super::{db_latencies_ms, label_cpu_e2e, label_e2e, label_e2e_batch, pg_counters, LABEL_FOOTPRINT};
use crate::client::{echo_body, submit_batches, submit_many, wait_task, SubmitApi};
use crate::procfs::{stack_groups, CpuSnapshot};
use crate::report::{Results, Unit};
use crate::stack::{http_client, Bench};
use crate::stats::percentile;
use crate::Args;

/// Pause between two long-polls of a task that is not terminal yet.
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// Submits and runs `n` tasks that are not measured (connections, consumer group, caches).
pub async fn warm_up(b: &Bench, base: &str, n: usize) -> Result<()> {
    submit_many(&b.http, base, n, 16, |i| echo_body(1_000_000_000 + i)).await?;
    b.wait_all_terminal(Duration::from_secs(120)).await
}

/// Runs `--warmup-tasks` echo tasks through a gateway and the scenario's
/// workers in a namespace of their own, then removes it.
pub async fn warm_up_stack(a: &Args) -> Result<()> {
    let b = Bench::new("warmup", a).await?;
    let gw = b.gateway().await;
    let workers = b.workers(a.workers, a.concurrency).await;
    let http = http_client(a.clients, &b.stack.api_key);
    let tasks: Vec<usize> = (0..a.warmup_tasks).collect();
    let parts = tasks.chunks(tasks.len().div_ceil(a.clients.max(1)).max(1)).map(|part| {
        let (http, base, part) = (http.clone(), gw.base.clone(), part.to_vec());
        tokio::spawn(async move { submit_batches(&http, &base, &part, 100).await })
    });
    for p in futures::future::join_all(parts).await {
        p??;
    }
    b.wait_all_terminal(Duration::from_secs(300)).await?;
    drop(workers);
    drop(gw);
    b.cleanup().await;
    Ok(())
}

/// Both measurements: single submissions, then batches.
pub async fn run(a: &Args, r: &mut Results, limit: LimitVariant) -> Result<()> {
    measure(a, r, SubmitApi::Single, limit).await?;
    measure(a, r, SubmitApi::Batch(a.batch_size), limit).await
}

async fn measure(a: &Args, r: &mut Results, api: SubmitApi, limit: LimitVariant) -> Result<()> {
    let label = match api {
        SubmitApi::Single => label_e2e(a),
        SubmitApi::Batch(_) => label_e2e_batch(a),
    } + limit.suffix();
    let n = a.e2e_tasks;
    let b = Bench::new("e2e", a).await?;
    let gw = b.gateway().await;
    limit.declare(b.db()).await?;
    let workers = b.workers(a.workers, a.concurrency).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let (SubmitApi::Single, LimitVariant::None, Some(m)) =
        (api, limit, workers.iter().filter_map(|w| crate::procfs::rss_mib(w.pid())).reduce(f64::max))
    {
        r.add(LABEL_FOOTPRINT, "worker RSS idle (largest worker)", Unit::MiB, m);
    }
    warm_up(&b, &gw.base, 200).await?;
    let mark: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8").fetch_one(b.db()).await?;

    let http = http_client(a.clients, &b.stack.api_key);
    let named = stack_groups(gw.proc.pid(), &workers.iter().map(|w| w.pid()).collect::<Vec<_>>());
    let cpu0 = CpuSnapshot::take(&named);
    let pg0 = pg_counters(b.db()).await?;
    let t0 = Instant::now();
    let clients: Vec<_> = (0..a.clients)
        .map(|c| {
            let (http, base) = (http.clone(), gw.base.clone());
            let mine: Vec<usize> = (c..n).step_by(a.clients).collect();
            tokio::spawn(async move {
                let ids = match api {
                    SubmitApi::Single => {
                        let mut ids = Vec::with_capacity(mine.len());
                        for i in mine {
                            ids.extend(submit_many(&http, &base, 1, 1, |_| echo_body(i)).await?);
                        }
                        ids
                    }
                    SubmitApi::Batch(per) => submit_batches(&http, &base, &mine, per).await?,
                };
                let mut failed = 0usize;
                for id in &ids {
                    if wait_task(&http, &base, id, POLL_EVERY, Duration::from_secs(300)).await? != "success" {
                        failed += 1;
                    }
                }
                Ok::<_, anyhow::Error>(failed)
            })
        })
        .collect();
    let mut failed = 0;
    for c in clients {
        failed += c.await??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = CpuSnapshot::take(&named);

    let filter = format!("created_at >= to_timestamp({mark})");
    let lat = db_latencies_ms(b.db(), "finished_at - created_at", &filter).await?;
    r.add(&label, "tasks/s (first submit → last result seen)", Unit::PerSec, n as f64 / secs);
    r.add(&label, "submit→finish p50", Unit::Ms, percentile(&lat, 0.5));
    r.add(&label, "submit→finish p99", Unit::Ms, percentile(&lat, 0.99));
    r.errors(&label, "not success", failed as f64);
    for (group, pct) in cpu0.since(&cpu1) {
        r.add(&label_cpu_e2e(&label), &group, Unit::CorePct, pct);
    }

    drop(workers);
    drop(gw);
    // The services' backends flush their statistics as they close.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg1 = pg_counters(b.db()).await?;
    r.add(&label, "PostgreSQL rows written per task", Unit::Count, (pg1.rows - pg0.rows) / n as f64);
    b.cleanup().await;
    Ok(())
}
