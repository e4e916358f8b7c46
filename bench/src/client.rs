//! What a client does: submit tasks over HTTP and wait for their results.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures::StreamExt;
use serde_json::Value;

/// The body of the i-th benchmark task: `echo(i)`.
pub fn echo_body(i: usize) -> String {
    // `c` spreads the tasks over the keyed limit's buckets (`--limits keyed`).
    format!(r#"{{"task":"echo","args":[{i}],"kwargs":{{"c":{}}}}}"#, i % crate::scenarios::limits::BUCKETS)
}

/// The body of `POST /tasks/batch` for tasks `echo(i)`, i in `tasks`.
pub fn batch_body(tasks: impl IntoIterator<Item = usize>) -> String {
    let items: Vec<String> = tasks.into_iter().map(echo_body).collect();
    format!(r#"{{"tasks":[{}]}}"#, items.join(","))
}

/// Why [`SubmitApi::probe`] found an API not served.
#[derive(Debug, Clone)]
pub struct Unserved {
    /// What the gateway answered.
    pub why: String,
    /// The gateway has no such endpoint (404, 405): an older gateway, whose
    /// figure is skipped; otherwise the probe failed (a problem).
    pub absent: bool,
}

/// How tasks are submitted: one `POST /tasks` each, or `POST /tasks/batch`
/// (body and answer `{"tasks": [...]}`); against a gateway without the batch
/// endpoint [`SubmitApi::probe`] reports it missing and the scenario prints n/a.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SubmitApi {
    Single,
    Batch(usize),
}

impl SubmitApi {
    /// Tasks per request.
    pub fn per_request(self) -> usize {
        match self {
            SubmitApi::Single => 1,
            SubmitApi::Batch(n) => n,
        }
    }

    /// Whether the gateway serves this API (None) or why not (Some).
    pub async fn probe(self, http: &reqwest::Client, base: &str) -> Option<Unserved> {
        match self {
            SubmitApi::Single => None,
            SubmitApi::Batch(_) => {
                let r = http
                    .post(format!("{base}/tasks/batch"))
                    .header("content-type", "application/json")
                    .body(batch_body([0]))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => None,
                    Ok(r) => Some(Unserved {
                        why: format!("POST /tasks/batch answers {}", r.status().as_u16()),
                        // A gateway from before the endpoint: no route for it.
                        absent: matches!(r.status().as_u16(), 404 | 405),
                    }),
                    Err(e) => Some(Unserved { why: format!("POST /tasks/batch: {e}"), absent: false }),
                }
            }
        }
    }

    /// Sends one request for tasks `first..first + per_request()`; returns how many were accepted.
    pub async fn send(self, http: &reqwest::Client, base: &str, first: usize) -> Result<usize> {
        let (url, body) = match self {
            SubmitApi::Single => (format!("{base}/tasks"), echo_body(first)),
            SubmitApi::Batch(n) => (format!("{base}/tasks/batch"), batch_body(first..first + n)),
        };
        let r = http.post(url).header("content-type", "application/json").body(body).send().await?;
        let status = r.status().as_u16();
        let _ = r.bytes().await?;
        match (self, status) {
            (SubmitApi::Single, 200 | 202) => Ok(1),
            (SubmitApi::Batch(n), 200 | 201 | 202 | 207) => Ok(n),
            (_, s) => bail!("POST answered {s}"),
        }
    }
}

/// Submits `n` tasks built by `body(i)` from `conc` concurrent clients; returns their ids in order.
pub async fn submit_many(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    conc: usize,
    body: impl Fn(usize) -> String,
) -> Result<Vec<String>> {
    let reqs = (0..n).map(|i| {
        let req = http.post(format!("{base}/tasks")).header("content-type", "application/json").body(body(i));
        async move {
            let r = req.send().await?;
            let status = r.status().as_u16();
            let text = r.text().await?;
            if status != 202 && status != 200 {
                bail!("POST /tasks answered {status}: {text}");
            }
            let v: Value = serde_json::from_str(&text)?;
            Ok::<_, anyhow::Error>(v["id"].as_str().unwrap_or_default().to_string())
        }
    });
    futures::stream::iter(reqs).buffered(conc.max(1)).collect::<Vec<_>>().await.into_iter().collect()
}

/// Submits tasks `echo(i)`, i in `tasks`, through `POST /tasks/batch`, `per`
/// per request, one request after the other; returns the task ids in order.
pub async fn submit_batches(http: &reqwest::Client, base: &str, tasks: &[usize], per: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(tasks.len());
    for chunk in tasks.chunks(per.max(1)) {
        let r = http
            .post(format!("{base}/tasks/batch"))
            .header("content-type", "application/json")
            .body(batch_body(chunk.iter().copied()))
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST /tasks/batch answered {status}: {v}");
        }
        ids.extend(
            v["tasks"].as_array().into_iter().flatten().map(|t| t["id"].as_str().unwrap_or_default().to_string()),
        );
    }
    Ok(ids)
}

/// Waits for a task as a client does: long-polls `GET /tasks/{id}?wait=10`
/// (the gateway answers as soon as the task is terminal, or after 10 s) until
/// terminal, pausing `every` between calls in case a gateway answers at once
/// (one without long-poll); returns the status.
pub async fn wait_task(
    http: &reqwest::Client,
    base: &str,
    id: &str,
    every: Duration,
    timeout: Duration,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let v: Value = http.get(format!("{base}/tasks/{id}?wait=10")).send().await?.json().await?;
        let status = v["status"].as_str().unwrap_or_default();
        if matches!(status, "success" | "failed" | "cancelled") {
            return Ok(status.to_string());
        }
        if Instant::now() > deadline {
            bail!("task {id} still {status} after {timeout:?}");
        }
        tokio::time::sleep(every).await;
    }
}

/// Closed loop: `clients` concurrent clients send requests back to back for
/// `secs`. Returns (accepted tasks, errors, elapsed s, per-request latencies in ms).
pub async fn closed_loop(
    http: &reqwest::Client,
    base: &str,
    api: SubmitApi,
    clients: usize,
    secs: f64,
) -> (usize, usize, f64, Vec<f64>) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, next) = (http.clone(), base.to_string(), next.clone());
            tokio::spawn(async move {
                let (mut ok, mut err, mut lat) = (0usize, 0usize, Vec::new());
                while Instant::now() < end {
                    let first = next.fetch_add(api.per_request(), Ordering::Relaxed);
                    let t = Instant::now();
                    match api.send(&http, &base, first).await {
                        Ok(n) => {
                            ok += n;
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        Err(_) => err += 1,
                    }
                }
                (ok, err, lat)
            })
        })
        .collect();
    let (mut ok, mut err, mut lat) = (0, 0, Vec::new());
    for h in handles {
        let (o, e, l) = h.await.expect("client task");
        ok += o;
        err += e;
        lat.extend(l);
    }
    (ok, err, start.elapsed().as_secs_f64(), lat)
}

/// Open loop: one request every 1/rate s for `secs`, each on its own task, so a
/// slow answer does not delay the next request. Latency is measured from the
/// request's scheduled time (no coordinated omission). Returns (accepted,
/// errors, elapsed s until the last answer, latencies in ms).
pub async fn fixed_rate(
    http: &reqwest::Client,
    base: &str,
    rate: f64,
    secs: f64,
    first_index: usize,
) -> (usize, usize, f64, Vec<f64>) {
    let n = (rate * secs).round() as usize;
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at).await;
        let (http, base) = (http.clone(), base.to_string());
        handles.push(tokio::spawn(async move {
            let r = SubmitApi::Single.send(&http, &base, first_index + i).await;
            (r.is_ok(), at.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let (mut ok, mut err, mut lat) = (0, 0, Vec::with_capacity(n));
    for h in handles {
        let (good, l) = h.await.expect("request task");
        if good {
            ok += 1;
            lat.push(l);
        } else {
            err += 1;
        }
    }
    (ok, err, start.elapsed().as_secs_f64(), lat)
}
