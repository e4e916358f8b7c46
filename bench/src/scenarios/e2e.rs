//! Scenario 3: with workers running, clients submit N echo tasks and wait for
//! every result the way a client does (long-polling `GET /tasks/{id}?wait=10`). Throughput: N / (first submit → last result
//! seen). Per-task latency: finished_at − created_at (database clock).

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{db_latencies_ms, label_e2e, LABEL_FOOTPRINT};
use crate::client::{echo_body, submit_many, wait_task};
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

pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    let label = label_e2e(a);
    let n = a.e2e_tasks;
    let b = Bench::new("e2e", a).await?;
    let gw = b.gateway().await?;
    let workers = b.workers(a.workers, a.concurrency).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(m) = workers.iter().filter_map(|w| w.rss_mib()).reduce(f64::max) {
        r.add(LABEL_FOOTPRINT, "worker RSS idle (largest worker)", Unit::MiB, m);
    }
    warm_up(&b, &gw.base, 200).await?;
    let mark: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8").fetch_one(b.db()).await?;

    let http = http_client(a.clients);
    let t0 = Instant::now();
    let clients: Vec<_> = (0..a.clients)
        .map(|c| {
            let (http, base) = (http.clone(), gw.base.clone());
            let mine: Vec<usize> = (c..n).step_by(a.clients).collect();
            tokio::spawn(async move {
                let mut ids = Vec::with_capacity(mine.len());
                for i in mine {
                    ids.extend(submit_many(&http, &base, 1, 1, |_| echo_body(i)).await?);
                }
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

    let filter = format!("created_at >= to_timestamp({mark})");
    let lat = db_latencies_ms(b.db(), "finished_at - created_at", &filter).await?;
    r.add(&label, "tasks/s (first submit → last result seen)", Unit::PerSec, n as f64 / secs);
    r.add(&label, "submit→finish p50", Unit::Ms, percentile(&lat, 0.5));
    r.add(&label, "submit→finish p99", Unit::Ms, percentile(&lat, 0.99));
    r.add(&label, "not success", Unit::Count, failed as f64);

    drop(workers);
    drop(gw);
    b.cleanup().await;
    Ok(())
}
