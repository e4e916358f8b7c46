//! Scenario 2 (drain) and most of 5 (footprint): N echo tasks are submitted
//! with no worker running and published to Kafka; then W workers start and
//! run them all. Throughput is N / (max(finished_at) − min(started_at)) on the
//! database clock. Meanwhile: RSS of the gateway and workers, CPU per process
//! group, and PostgreSQL rows and WAL written per task.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::limits::LimitVariant;
use super::{label_cpu, label_drain, pg_counters, LABEL_FOOTPRINT};
use crate::client::{echo_body, submit_many};
use crate::procfs::{rss_mib, stack_groups, CpuSnapshot};
use crate::report::{Results, Unit};
use crate::stack::Bench;
use crate::Args;

pub async fn run(a: &Args, r: &mut Results, limit: LimitVariant) -> Result<()> {
    let label = format!("{}{}", label_drain(a), limit.suffix());
    // The footprint rows are the plain run's.
    let plain = limit == LimitVariant::None;
    let n = a.drain_tasks;
    let b = Bench::new("drain", a).await?;
    let gw = b.gateway().await;
    limit.declare(b.db()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Some(m) = crate::procfs::rss_mib(gw.proc.pid()).filter(|_| plain) {
        r.add(LABEL_FOOTPRINT, "gateway RSS idle", Unit::MiB, m);
    }

    // Let the services' own stats settle, then count from here.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pg0 = pg_counters(b.db()).await?;

    let t_submit = Instant::now();
    submit_many(&b.http, &gw.base, n, a.clients, echo_body).await?;
    let submit_secs = t_submit.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let unpublished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tasks WHERE status = 'queued' AND published_at IS NULL")
                .fetch_one(b.db())
                .await?;
        if unpublished == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{unpublished} tasks still unpublished after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.add(&label, "(setup) enqueue rate", Unit::PerSec, n as f64 / submit_secs);

    let cpu0 = CpuSnapshot::take(&stack_groups(gw.proc.pid(), &[]));
    let t_start = Instant::now();
    eprintln!("[bench]   drain: {n} tasks queued and published; starting the workers");
    let workers: Vec<_> = (0..a.workers).map(|i| b.spawn_worker(&format!("worker-{i}"), a.concurrency)).collect();

    // Peak RSS sampler.
    let pids: Vec<u32> = workers.iter().map(|w| w.pid()).collect();
    let gw_pid = gw.proc.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let peaks = Arc::new(Mutex::new((0.0f64, 0.0f64)));
    let sampler = {
        let (stop, peaks, pids) = (stop.clone(), peaks.clone(), pids.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                {
                    let mut p = peaks.lock();
                    p.0 = p.0.max(rss_mib(gw_pid).unwrap_or(0.0));
                    for &pid in &pids {
                        p.1 = p.1.max(rss_mib(pid).unwrap_or(0.0));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    b.wait_all_terminal(Duration::from_secs(600)).await?;
    let wall = t_start.elapsed().as_secs_f64();
    eprintln!("[bench]   drain: all terminal after {wall:.1} s");
    let cpu1 = CpuSnapshot::take(&stack_groups(gw_pid, &pids));
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;

    let (ok, span): (i64, f64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'success'),
                extract(epoch FROM max(finished_at) - min(started_at))::float8 FROM tasks",
    )
    .fetch_one(b.db())
    .await?;
    r.add(&label, "finished", Unit::PerSec, n as f64 / span);
    r.add(&label, "first start → last finish", Unit::Secs, span);
    r.add(&label, "worker spawn → all terminal (wall, incl. start-up)", Unit::Secs, wall);
    r.errors(&label, "not success", (n as i64 - ok) as f64);

    let (gw_peak, w_peak) = *peaks.lock();
    if plain {
        r.add(LABEL_FOOTPRINT, "gateway RSS peak during drain", Unit::MiB, gw_peak);
        r.add(LABEL_FOOTPRINT, "worker RSS peak during drain (largest worker)", Unit::MiB, w_peak);
    }
    for (group, pct) in cpu0.since(&cpu1) {
        r.add(&format!("{}{}", label_cpu(a), limit.suffix()), &group, Unit::CorePct, pct);
    }

    drop(workers);
    // Backends flush their statistics within about a second of going idle.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let pg1 = pg_counters(b.db()).await?;
    let footprint = if plain { LABEL_FOOTPRINT.to_string() } else { label.clone() };
    r.add(
        &footprint,
        "PostgreSQL rows written per task (this database)",
        Unit::Count,
        (pg1.rows - pg0.rows) / n as f64,
    );
    r.add(&footprint, "WAL bytes per task (whole cluster)", Unit::Bytes, (pg1.wal - pg0.wal) / n as f64);

    drop(gw);
    b.cleanup().await;
    Ok(())
}
