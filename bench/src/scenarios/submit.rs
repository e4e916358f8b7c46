//! Scenario 1: `POST /tasks` throughput and latency (gateway, PostgreSQL and
//! Kafka only: no worker runs, so this is the submit path alone).

use anyhow::Result;

use super::{label_submit, label_submit_batch, label_submit_rate};
use crate::client::{closed_loop, fixed_rate, SubmitApi};
use crate::report::{Results, Unit};
use crate::stack::{http_client, Bench};
use crate::stats::{percentile, sorted};
use crate::Args;

/// Scenario 1 on the user's gateway at `base` (`YADTQ_URL`), with `api_key`
/// (`YADTQ_API_KEY`): the closed loop, the batch and the fixed rate, one
/// after the other on that gateway. The `echo` tasks go to its `default`
/// queue, where its workers run them (or they wait, when none serves
/// `echo`); nothing is cleaned up afterwards.
pub async fn run_external(a: &Args, base: &str, api_key: &str, r: &mut Results) -> Result<()> {
    let http = http_client(a.clients.max(64), api_key);
    let probe = http.get(format!("{base}/tasks?limit=1")).send().await?;
    // A submit-only key reads nothing (403) but is accepted; 401 is a wrong key.
    anyhow::ensure!(probe.status() != 401, "{base} refused YADTQ_API_KEY (401)");
    closed_loop(&http, base, SubmitApi::Single, a.clients, 1.0).await;
    for api in [SubmitApi::Single, SubmitApi::Batch(a.batch_size)] {
        let label = match api {
            SubmitApi::Single => label_submit(a),
            SubmitApi::Batch(_) => label_submit_batch(a),
        };
        if let Some(u) = api.probe(&http, base).await {
            // The user's gateway may predate the batch endpoint: skipped, not failed.
            match u.absent {
                true => r.skip(&label, "accepted", &format!("skipped: {}", u.why)),
                false => r.na(&label, "accepted", &format!("n/a: {}", u.why)),
            }
            continue;
        }
        let (ok, err, secs, lat) = closed_loop(&http, base, api, a.clients, a.submit_secs).await;
        let s = sorted(lat);
        r.add(&label, "accepted", Unit::PerSec, ok as f64 / secs);
        r.add(&label, "latency p50", Unit::Ms, percentile(&s, 0.5));
        r.add(&label, "latency p99", Unit::Ms, percentile(&s, 0.99));
        r.errors(&label, "errors", err as f64);
    }
    let label = label_submit_rate(a);
    let (ok, err, secs, lat) = fixed_rate(&http, base, a.submit_rate, a.submit_secs, 1 << 40).await;
    let s = sorted(lat);
    r.add(&label, "accepted", Unit::PerSec, ok as f64 / secs);
    r.add(&label, "latency p50", Unit::Ms, percentile(&s, 0.5));
    r.add(&label, "latency p99", Unit::Ms, percentile(&s, 0.99));
    r.errors(&label, "errors", err as f64);
    Ok(())
}

/// Scenario 1 on stacks of its own: one for the closed loop and the batch,
/// a fresh one (after a checkpoint) for the fixed rate.
pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    let b = Bench::new("submit", a).await?;
    let gw = b.gateway().await;
    let http = http_client(a.clients.max(64), &b.stack.api_key);

    // Warm up connections and the gateway's pools (not counted).
    closed_loop(&http, &gw.base, SubmitApi::Single, a.clients, 1.0).await;

    for api in [SubmitApi::Single, SubmitApi::Batch(a.batch_size)] {
        let label = match api {
            SubmitApi::Single => label_submit(a),
            SubmitApi::Batch(_) => label_submit_batch(a),
        };
        // Our own gateway serves the batch endpoint: anything else is a problem.
        if let Some(u) = api.probe(&http, &gw.base).await {
            r.na(&label, "accepted", &format!("n/a: {}", u.why));
            continue;
        }
        let (ok, err, secs, lat) = closed_loop(&http, &gw.base, api, a.clients, a.submit_secs).await;
        let s = sorted(lat);
        r.add(&label, "accepted", Unit::PerSec, ok as f64 / secs);
        r.add(&label, "latency p50", Unit::Ms, percentile(&s, 0.5));
        r.add(&label, "latency p99", Unit::Ms, percentile(&s, 0.99));
        r.add(&label, "latency p99.9", Unit::Ms, percentile(&s, 0.999));
        r.errors(&label, "errors", err as f64);
    }

    drop(gw);
    b.cleanup().await;

    // The fixed rate gets a stack of its own, started after a checkpoint: the
    // batch phase above wrote hundreds of thousands of rows, and their WAL,
    // checkpoint and autovacuum belong to that phase, not to this one.
    let b = Bench::new("submit_rate", a).await?;
    if let Err(e) = sqlx::query("CHECKPOINT").execute(b.db()).await {
        eprintln!("[bench] CHECKPOINT before the fixed-rate submit failed (not a superuser?): {e}");
    }
    let gw = b.gateway().await;
    // Every stack has an API key of its own: the first stack's is a 401 here.
    let http = http_client(a.clients.max(64), &b.stack.api_key);
    closed_loop(&http, &gw.base, SubmitApi::Single, a.clients, 1.0).await;
    let label = label_submit_rate(a);
    let (ok, err, secs, lat) = fixed_rate(&http, &gw.base, a.submit_rate, a.submit_secs, 1 << 40).await;
    let s = sorted(lat);
    r.add(&label, "accepted", Unit::PerSec, ok as f64 / secs);
    r.add(&label, "latency p50", Unit::Ms, percentile(&s, 0.5));
    r.add(&label, "latency p99", Unit::Ms, percentile(&s, 0.99));
    r.target(&label, "latency p99", Unit::Ms, 10.0, false);
    r.errors(&label, "errors", err as f64);

    drop(gw);
    b.cleanup().await;
    Ok(())
}
