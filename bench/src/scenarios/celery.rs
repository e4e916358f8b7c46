//! Celery side by side: runs `bench/celery/celery_bench.py` (scenarios 2 and
//! 3 with Celery on Redis) and files its JSON figures under the same labels as
//! yadtq's, so the table can print the ratio.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{label_drain, label_e2e, label_e2e_batch, LABEL_FOOTPRINT};
use crate::report::{Results, Unit};
use crate::Args;

/// The Python interpreter (with celery and redis installed) and the script,
/// when Celery is configured (`--celery-python` / `YADTQ_BENCH_PYTHON`).
pub fn configured(a: &Args) -> Option<(PathBuf, PathBuf)> {
    let py = a.celery_python.clone()?;
    let script = a
        .celery_script
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("celery/celery_bench.py"));
    Some((py, script))
}

async fn call(a: &Args, args: &[String]) -> Result<Value> {
    let (py, script) = configured(a).context("Celery is not configured")?;
    let log_dir = crate::stack::bin_dir().join("../bench-logs/celery");
    std::fs::create_dir_all(&log_dir)?;
    let mut cmd = tokio::process::Command::new(&py);
    cmd.arg(&script).args(args).stdin(Stdio::null()).kill_on_drop(true).env("CELERY_BENCH_LOG_DIR", &log_dir);
    if let Some(url) = &a.redis_url {
        cmd.env("CELERY_BENCH_REDIS", url);
    }
    let out = cmd.output().await.with_context(|| format!("run {}", py.display()))?;
    if !out.status.success() {
        bail!("celery_bench.py {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().context("celery_bench.py printed nothing")?;
    Ok(serde_json::from_str(last)?)
}

/// Versions of Celery, its libraries, Python and the Redis server.
pub async fn versions(a: &Args) -> Option<Value> {
    configured(a)?;
    match call(a, &["versions".into()]).await {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("celery versions: {e:#}");
            None
        }
    }
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

pub async fn drain(a: &Args, r: &mut Results) -> Result<()> {
    let v = call(
        a,
        &[
            "drain".into(),
            "--tasks".into(),
            a.drain_tasks.to_string(),
            "--workers".into(),
            a.workers.to_string(),
            "--concurrency".into(),
            a.concurrency.to_string(),
        ],
    )
    .await?;
    let label = label_drain(a);
    r.add(&label, "(setup) enqueue rate", Unit::PerSec, f(&v, "submit_per_s"));
    r.add(&label, "finished", Unit::PerSec, f(&v, "finished_per_s"));
    r.add(&label, "first start → last finish", Unit::Secs, f(&v, "span_s"));
    r.add(&label, "worker spawn → all terminal (wall, incl. start-up)", Unit::Secs, f(&v, "wall_s"));
    r.errors(&label, "not success", f(&v, "not_success"));
    r.add(LABEL_FOOTPRINT, "worker RSS peak during drain (largest worker)", Unit::MiB, f(&v, "worker_rss_peak_mib"));
    Ok(())
}

pub async fn e2e(a: &Args, r: &mut Results) -> Result<()> {
    let v = call(
        a,
        &[
            "e2e".into(),
            "--tasks".into(),
            a.e2e_tasks.to_string(),
            "--workers".into(),
            a.workers.to_string(),
            "--concurrency".into(),
            a.concurrency.to_string(),
        ],
    )
    .await?;
    let label = label_e2e(a);
    r.add(&label, "tasks/s (first submit → last result seen)", Unit::PerSec, f(&v, "tasks_per_s"));
    r.add(&label, "submit→finish p50", Unit::Ms, f(&v, "p50_ms"));
    r.add(&label, "submit→finish p99", Unit::Ms, f(&v, "p99_ms"));
    r.errors(&label, "not success", f(&v, "not_success"));
    r.add(&label, "(client) submit rate", Unit::PerSec, f(&v, "client_submit_per_s"));
    // Celery has no bulk submit (a group() sends one message per task too): its
    // client's way to send N tasks is the same in both rows.
    let batch = label_e2e_batch(a);
    r.add(&batch, "tasks/s (first submit → last result seen)", Unit::PerSec, f(&v, "tasks_per_s"));
    r.add(&batch, "submit→finish p50", Unit::Ms, f(&v, "p50_ms"));
    r.add(&batch, "submit→finish p99", Unit::Ms, f(&v, "p99_ms"));
    r.add(LABEL_FOOTPRINT, "worker RSS idle (largest worker)", Unit::MiB, f(&v, "worker_rss_idle_mib"));
    Ok(())
}
