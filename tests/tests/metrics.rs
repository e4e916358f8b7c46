//! Prometheus metrics, read as a scraper would: the gateway's `/metrics` and a
//! worker's admin listener (`--admin-listen`: `/healthz`, `/readyz` by the one
//! readiness rule, `/metrics`).

use std::time::Duration;

use serde_json::json;
use yadtq_tests::{free_port, wait_for, Stack};

/// The value of the sample of `metric` whose labels contain all of `labels`
/// (`key="value"` pairs) in Prometheus text `body`; `None` when absent.
fn sample(body: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name_labels, value) = l.rsplit_once(' ')?;
        let rest = name_labels.strip_prefix(metric)?;
        let ok = (rest.is_empty() || rest.starts_with('{')) && labels.iter().all(|p| rest.contains(p));
        ok.then(|| value.parse().ok()).flatten()
    })
}

async fn scrape(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.expect("scrape");
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    (status, ct, r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn gateway_and_worker_export_what_they_did() {
    let stack = Stack::new("metrics").await;
    let gw = stack.gateway(&[]).await;
    let admin = format!("127.0.0.1:{}", free_port());
    let w = stack.worker("worker", &["--admin-listen", &admin]).await;
    let admin = format!("http://{admin}");
    assert_eq!(scrape(&format!("{admin}/healthz")).await.0, 200);
    stack.wait_assigned(&w).await;
    wait_for(Duration::from_secs(30), "the worker's /readyz", || async {
        scrape(&format!("{admin}/readyz")).await.0 == 200
    })
    .await;

    let ids = stack.submit_many(&gw, 10, |i| json!({"task": "multiply", "args": [i, 2]})).await;
    stack.wait_terminal(&ids, Duration::from_secs(120)).await;
    let missing = gw.get("/tasks/never-submitted").await;
    assert_eq!(missing.status, 404);

    let (status, ct, body) = scrape(&format!("{}/metrics", gw.base)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let posts = ["method=\"POST\"", "route=\"/tasks\"", "status=\"202\""];
    assert_eq!(sample(&body, "yadtq_http_requests_total", &posts), Some(10.0), "{body}");
    let not_found = ["route=\"/tasks/{id}\"", "status=\"404\""];
    assert_eq!(sample(&body, "yadtq_http_requests_total", &not_found), Some(1.0), "{body}");
    assert_eq!(sample(&body, "yadtq_tasks_submitted_total", &["queue=\"default\""]), Some(10.0), "{body}");
    assert!(!body.contains(&ids[0]), "no task id in any label");

    let (_, _, body) = scrape(&format!("{admin}/metrics")).await;
    let done = ["task=\"multiply\"", "outcome=\"success\""];
    assert_eq!(sample(&body, "yadtq_tasks_finished_total", &done), Some(10.0), "{body}");
    assert_eq!(sample(&body, "yadtq_task_duration_seconds_count", &["task=\"multiply\""]), Some(10.0), "{body}");
    wait_for(Duration::from_secs(10), "the worker's gauges after a heartbeat", || async {
        let (_, _, body) = scrape(&format!("{admin}/metrics")).await;
        sample(&body, "yadtq_worker_ready", &[]) == Some(1.0)
            && sample(&body, "yadtq_worker_partitions", &[]) == Some(12.0)
    })
    .await;
}
