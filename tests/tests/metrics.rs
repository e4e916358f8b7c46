//! Prometheus metrics, read as a scraper would: the gateway's `/metrics` and a
//! worker's admin listener (`--admin-listen`: `/healthz`, `/readyz` by the one
//! readiness rule, `/metrics`).

use std::time::Duration;

use serde_json::json;
use yadtq_tests::{free_port, mint_key, wait_for, Stack};

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

/// GETs `url` as a scraper with `key` (the gateway's `/metrics` needs the
/// `metrics` scope, which the harness's admin key implies; a worker's
/// loopback admin listener without a token ignores it).
async fn scrape_as(url: &str, key: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.expect("scrape");
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
    assert_eq!(scrape_as(&format!("{admin}/healthz"), None).await.0, 200);
    stack.wait_assigned(&w).await;
    wait_for(Duration::from_secs(30), "the worker's /readyz", || async {
        scrape_as(&format!("{admin}/readyz"), None).await.0 == 200
    })
    .await;

    let ids = stack.submit_many(&gw, 10, |i| json!({"task": "multiply", "args": [i, 2]})).await;
    stack.wait_terminal(&ids, Duration::from_secs(120)).await;
    let missing = gw.get("/tasks/never-submitted").await;
    assert_eq!(missing.status, 404);

    let (status, ct, body) = scrape_as(&format!("{}/metrics", gw.base), Some(&stack.api_key)).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let posts = ["method=\"POST\"", "route=\"/tasks\"", "status=\"202\""];
    assert_eq!(sample(&body, "yadtq_http_requests_total", &posts), Some(10.0), "{body}");
    let not_found = ["route=\"/tasks/{id}\"", "status=\"404\""];
    assert_eq!(sample(&body, "yadtq_http_requests_total", &not_found), Some(1.0), "{body}");
    assert_eq!(sample(&body, "yadtq_tasks_submitted_total", &["queue=\"default\""]), Some(10.0), "{body}");
    let timed = ["method=\"POST\"", "route=\"/tasks\"", "status=\"2xx\""];
    assert_eq!(sample(&body, "yadtq_http_request_duration_seconds_count", &timed), Some(10.0), "{body}");
    assert!(!body.contains(&ids[0]), "no task id in any label");

    let (_, _, body) = scrape_as(&format!("{admin}/metrics"), None).await;
    let done = ["task=\"multiply\"", "queue=\"default\"", "outcome=\"success\""];
    assert_eq!(sample(&body, "yadtq_tasks_finished_total", &done), Some(10.0), "{body}");
    assert_eq!(sample(&body, "yadtq_task_duration_seconds_count", &["task=\"multiply\""]), Some(10.0), "{body}");
    wait_for(Duration::from_secs(10), "the worker's gauges after a heartbeat", || async {
        let (_, _, body) = scrape_as(&format!("{admin}/metrics"), None).await;
        sample(&body, "yadtq_worker_ready", &[]) == Some(1.0)
            && sample(&body, "yadtq_worker_partitions", &[]) == Some(12.0)
    })
    .await;
}

/// The leader's samples (`yadtq_queue_tasks`, …) come from one process at a
/// time: the leader exports them, the others never do, and a leader that
/// loses the lease withdraws them. The test takes the lease away from both
/// gateways by holding the advisory lock itself, then gives it back.
#[tokio::test]
async fn only_the_leader_exports_the_samples_and_drops_them_with_the_lease() {
    use sqlx::Connection;
    let stack = Stack::new("leader_metrics").await;
    let a = stack.gateway(&[]).await;
    assert_eq!(a.submit(&json!({"task": "add", "args": [1, 2]})).await.status, 202); // no worker: it stays queued
    let b = stack.gateway(&[]).await;
    let queued = ["queue=\"default\"", "status=\"queued\""];
    let both = || async {
        let (_, _, ta) = scrape_as(&format!("{}/metrics", a.base), Some(&stack.api_key)).await;
        let (_, _, tb) = scrape_as(&format!("{}/metrics", b.base), Some(&stack.api_key)).await;
        (ta, tb)
    };
    // One leads and exports the queued task; the other exports no sample.
    let one_leader = || async {
        let (ta, tb) = both().await;
        let leads = |t: &str| sample(t, "yadtq_leader", &[]) == Some(1.0);
        let samples = |t: &str| sample(t, "yadtq_queue_tasks", &queued);
        (leads(&ta) != leads(&tb))
            && [&ta, &tb].iter().all(|t| samples(t) == leads(t).then_some(1.0))
            && [&ta, &tb].iter().all(|t| sample(t, "yadtq_publisher_backlog", &[]).is_some() == leads(t))
    };
    wait_for(Duration::from_secs(60), "one gateway to lead and export the samples", one_leader).await;

    // Take the lease: end the holder's session and lock the key before either gateway can.
    let key = yadtq_core::config::Names::new(&stack.namespace).leader_lock_key();
    let mut mine = sqlx::PgConnection::connect(&stack.database_url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks
              WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .execute(&stack.db)
        .await;
        let got: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut mine).await.unwrap();
        if got {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the test could not take the leader lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(Duration::from_secs(30), "both gateways to withdraw the samples", || async {
        let (ta, tb) = both().await;
        [&ta, &tb].iter().all(|t| {
            sample(t, "yadtq_leader", &[]) == Some(0.0)
                && !t.contains("yadtq_queue_tasks")
                && !t.contains("yadtq_publisher_backlog")
                && !t.contains("yadtq_workers_alive")
        })
    })
    .await;

    // Released: a gateway leads again, and it alone exports them.
    let _: bool = sqlx::query_scalar("SELECT pg_advisory_unlock($1)").bind(key).fetch_one(&mut mine).await.unwrap();
    wait_for(Duration::from_secs(60), "a gateway to lead again and export the samples", one_leader).await;
}

/// A worker's admin listener is on loopback unless told otherwise (a bare
/// port means `127.0.0.1:PORT`); on any other address it refuses to start
/// without `YADTQ_WORKER_METRICS_TOKEN`, and with one its `/metrics` needs
/// that Bearer token while `/healthz` and `/readyz` stay open for probes.
#[tokio::test]
async fn an_exposed_worker_admin_listener_needs_a_metrics_token() {
    let stack = Stack::new("worker_metrics_token").await;
    let port = free_port();
    let exposed = format!("0.0.0.0:{port}");
    let mut refused = stack.spawn("yadtq-worker", &["--admin-listen", &exposed], "worker-refused");
    let status = refused.wait_exit(Duration::from_secs(30)).expect("a worker exposed without a token exits");
    assert!(!status.success());
    let log = refused.log();
    assert!(log.contains("not a loopback address") && log.contains("YADTQ_WORKER_METRICS_TOKEN"), "{log}");

    let token = mint_key(&stack.db, "default", &[yadtq_core::auth::Scope::Metrics], None).await;
    let w = stack
        .with_env(&[("YADTQ_WORKER_METRICS_TOKEN", &token)])
        .worker("exposed", &["--admin-listen", &exposed])
        .await;
    let admin = format!("http://127.0.0.1:{port}");
    assert_eq!(scrape_as(&format!("{admin}/healthz"), None).await.0, 200);
    stack.wait_assigned(&w).await;
    wait_for(Duration::from_secs(30), "the exposed worker's /readyz without a token", || async {
        scrape_as(&format!("{admin}/readyz"), None).await.0 == 200
    })
    .await;
    let (status, _, body) = scrape_as(&format!("{admin}/metrics"), None).await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("yadtq_"), "{body}");
    let wrong = format!("{token}x");
    assert_eq!(scrape_as(&format!("{admin}/metrics"), Some(&wrong)).await.0, 401);
    let (status, ct, body) = scrape_as(&format!("{admin}/metrics"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(body.contains("yadtq_worker_concurrency"), "{body}");

    // A bare port is loopback, and open to local scrapers without a token.
    let port = free_port();
    let _local = stack.worker("loopback", &["--admin-listen", &port.to_string()]).await;
    wait_for(Duration::from_secs(30), "the loopback worker's /metrics without a token", || async {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.is_ok_and(|r| r.status() == 200)
    })
    .await;
}
