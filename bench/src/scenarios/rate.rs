//! Scenario 4: tasks submitted at a fixed rate R for T seconds with workers
//! running; per-task submit→start and submit→finish from database timestamps.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use super::{db_latencies_ms, label_rate, p50_p99};
use crate::client::{fixed_rate, submit_many};
use crate::report::{Results, Unit};
use crate::stack::{http_client, Bench};
use crate::stats::{percentile, sorted};
use crate::Args;

/// Row label of the long-poll figures.
pub fn label_long_poll(a: &Args) -> String {
    format!("4 long-poll ({} sleep 0.1 s tasks, one at a time)", a.long_polls)
}

/// Submits `n` short tasks one at a time, each followed by long-polls until
/// it is terminal; returns the sorted milliseconds from `finished_at`
/// (database clock) to the answer that reported it. Any refused request or
/// unsuccessful task is an error: a sample left out silently would print the
/// figure n/a without saying why (every POST here was once a 415).
async fn long_poll_lag_ms(http: &reqwest::Client, base: &str, n: usize) -> Result<Vec<f64>> {
    let mut lags = Vec::with_capacity(n);
    for _ in 0..n {
        let ids = submit_many(http, base, 1, 1, |_| r#"{"task":"sleep","args":[0.1]}"#.to_string()).await?;
        let id = &ids[0];
        let deadline = Instant::now() + Duration::from_secs(60);
        let (done, answered) = loop {
            let resp = http.get(format!("{base}/tasks/{id}?wait=10")).send().await?;
            let status = resp.status();
            let text = resp.text().await?;
            let answered = chrono::Utc::now();
            ensure!(status.is_success(), "GET /tasks/{id}?wait=10 answered {status}: {text}");
            let done: serde_json::Value = serde_json::from_str(&text)?;
            if matches!(done["status"].as_str(), Some("success" | "failed" | "cancelled")) {
                break (done, answered);
            }
            ensure!(Instant::now() < deadline, "task {id} still {} after 60 s", done["status"]);
        };
        ensure!(done["status"] == "success", "task {id} ended {}: {done}", done["status"]);
        let finished = done["finished_at"]
            .as_str()
            .and_then(|f| f.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .with_context(|| format!("task {id}: no finished_at in {done}"))?;
        lags.push((answered - finished).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    Ok(sorted(lags))
}

pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    let label = label_rate(a);
    let b = Bench::new("rate", a).await?;
    let gw = b.gateway().await;
    let workers = b.workers(a.workers, a.concurrency).await;
    super::e2e::warm_up(&b, &gw.base, 200).await?;
    let mark: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8").fetch_one(b.db()).await?;

    let http = http_client(256, &b.stack.api_key);
    let (ok, err, secs, http_lat) = fixed_rate(&http, &gw.base, a.rate, a.rate_secs, 0).await;
    b.wait_all_terminal(Duration::from_secs(300)).await?;

    let filter = format!("created_at >= to_timestamp({mark})");
    let start = db_latencies_ms(b.db(), "started_at - created_at", &filter).await?;
    let finish = db_latencies_ms(b.db(), "finished_at - created_at", &filter).await?;
    let http_lat = sorted(http_lat);
    r.add(&label, "submitted", Unit::PerSec, ok as f64 / secs);
    let (p50, p99) = p50_p99(&start);
    r.add(&label, "submit→start p50", Unit::Ms, p50);
    r.add(&label, "submit→start p99", Unit::Ms, p99);
    let (p50, p99) = p50_p99(&finish);
    r.add(&label, "submit→finish p50", Unit::Ms, p50);
    r.target(&label, "submit→finish p50", Unit::Ms, 20.0, false);
    r.add(&label, "submit→finish p99", Unit::Ms, p99);
    r.add(&label, "HTTP POST p99", Unit::Ms, percentile(&http_lat, 0.99));
    r.errors(&label, "errors", err as f64);

    // Long-poll: how soon `GET /tasks/{id}?wait=` answers after the task finished.
    let lag = long_poll_lag_ms(&http, &gw.base, a.long_polls).await?;
    let (p50, p99) = p50_p99(&lag);
    let label = label_long_poll(a);
    r.add(&label, "answer after finish p50", Unit::Ms, p50);
    r.add(&label, "answer after finish p99", Unit::Ms, p99);
    r.target(&label, "answer after finish p50", Unit::Ms, 100.0, false);

    drop(workers);
    drop(gw);
    b.cleanup().await;
    Ok(())
}
