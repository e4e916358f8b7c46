//! Scenario 8: `GET /tasks` at scale. Loads `--listing-rows` synthetic tasks
//! (`yadtq_core::store::synthetic`, default 1,000,000), then times one page
//! (`limit=50`) of each documented filter, one request at a time
//! (`--listing-requests` each), and measures the submit rate of
//! `--clients` closed-loop clients alone, then while `--listing-clients`
//! (default 128) clients list back to back, cycling through the filters.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use yadtq_core::store::synthetic;

use super::label_listing;
use crate::client::{closed_loop, SubmitApi};
use crate::report::{Results, Unit};
use crate::stack::{http_client, Bench};
use crate::stats::{percentile, sorted};
use crate::Args;

/// The filters timed: a name for the table and the query string.
fn filters() -> Vec<(&'static str, String)> {
    vec![
        ("none", String::new()),
        ("status=failed", "status=failed".into()),
        ("status=processing", "status=processing".into()),
        ("task=rare_task", "task=rare_task".into()),
        ("queue=emails", "queue=emails".into()),
        ("queue=rare", "queue=rare".into()),
        ("queue+status", "queue=reports&status=failed".into()),
        ("worker", format!("worker={}", synthetic::WORKER)),
        ("task+status", "task=resize&status=cancelled".into()),
        ("cursor (middle)", "cursor=500000".into()),
    ]
}

pub async fn run(a: &Args, r: &mut Results) -> Result<()> {
    let label = label_listing(a);
    let b = Bench::new("listing", a).await?;
    let t = Instant::now();
    synthetic::load_tasks(b.db(), a.listing_rows as i64).await?;
    sqlx::query("ANALYZE tasks").execute(b.db()).await?;
    eprintln!("[bench]   listing: {} rows loaded in {:.1} s", a.listing_rows, t.elapsed().as_secs_f64());
    let gw = b.gateway().await;
    let http = http_client(a.listing_clients.max(a.clients) + 8, &b.stack.api_key);

    for (name, query) in filters() {
        let url = format!("{}/tasks?limit=50&{query}", gw.base);
        let mut lat = Vec::with_capacity(a.listing_requests);
        for _ in 0..a.listing_requests {
            let t = Instant::now();
            let resp = http.get(&url).send().await?;
            ensure!(resp.status().is_success(), "GET {url}: {}", resp.status());
            resp.bytes().await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let s = sorted(lat);
        r.add(&label, &format!("{name} p50"), Unit::Ms, percentile(&s, 0.5));
        r.add(&label, &format!("{name} p99"), Unit::Ms, percentile(&s, 0.99));
    }

    // Submit alone, then with the listing clients.
    closed_loop(&http, &gw.base, SubmitApi::Single, a.clients, 1.0).await;
    let (ok, err, secs, _) = closed_loop(&http, &gw.base, SubmitApi::Single, a.clients, a.submit_secs).await;
    r.add(&label, "submit alone", Unit::PerSec, ok as f64 / secs);
    r.errors(&label, "submit alone errors", err as f64);

    let stop = Arc::new(AtomicBool::new(false));
    let (listed, failed, refused) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let urls: Arc<Vec<String>> =
        Arc::new(filters().into_iter().map(|(_, q)| format!("{}/tasks?limit=50&{q}", gw.base)).collect());
    let listers: Vec<_> = (0..a.listing_clients)
        .map(|i| {
            let (http, urls, stop, listed, failed, refused) =
                (http.clone(), urls.clone(), stop.clone(), listed.clone(), failed.clone(), refused.clone());
            tokio::spawn(async move {
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    // A 503 is the gateway's listing cap (--max-concurrent-listings) refusing.
                    let counter = match http.get(&urls[n % urls.len()]).send().await {
                        Ok(resp) if resp.status().as_u16() == 503 => &refused,
                        Ok(resp) if resp.status().is_success() => match resp.bytes().await {
                            Ok(_) => &listed,
                            Err(_) => &failed,
                        },
                        _ => &failed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await; // the listers reach their pace
    let listed_before = listed.load(Ordering::Relaxed);
    let (ok, err, secs, _) = closed_loop(&http, &gw.base, SubmitApi::Single, a.clients, a.submit_secs).await;
    let listed_during = listed.load(Ordering::Relaxed) - listed_before;
    stop.store(true, Ordering::Relaxed);
    for l in listers {
        let _ = l.await;
    }
    let with = format!("with {} listings", a.listing_clients);
    r.add(&label, &format!("submit {with}"), Unit::PerSec, ok as f64 / secs);
    r.errors(&label, &format!("submit {with} errors"), err as f64);
    r.add(&label, &format!("listings/s {with}"), Unit::PerSec, listed_during as f64 / secs);
    r.errors(&label, "listing errors", failed.load(Ordering::Relaxed) as f64);
    r.add(&label, "listings refused (503)", Unit::Count, refused.load(Ordering::Relaxed) as f64);

    drop(gw);
    b.cleanup().await;
    Ok(())
}
