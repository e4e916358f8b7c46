//! A real Prometheus server (Debian's `prometheus`, started by
//! `scripts/prometheus.sh`, scraping every second) scrapes a running gateway
//! and worker; the test asserts on PromQL answers from its HTTP API, then
//! runs every expression of the shipped dashboard
//! (`deploy/grafana/yadtq.json`) and alert rules
//! (`deploy/prometheus/alerts.yml`) against it and fails on any error.
//!
//! The server is shared; this test registers its two targets in a file_sd
//! file (`$YADTQ_PROMETHEUS_TARGETS/<namespace>.json`) with a `yadtq_test`
//! label, and removes it at the end. It scrapes with credentials, as the
//! shipped configuration does: the server's job reads its Bearer token from
//! `$YADTQ_PROMETHEUS_CREDENTIALS`, where the test writes a key with the
//! `metrics` scope, which the worker also takes as its
//! `YADTQ_WORKER_METRICS_TOKEN`. Skipped, with a message, when
//! `YADTQ_PROMETHEUS_URL` is unset (scripts/test.sh always sets it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};
use yadtq_tests::{free_port, kafka_config, mint_key, wait_for, Stack};

const LONG: Duration = Duration::from_secs(120);

/// The Prometheus HTTP API of the server under test.
struct Prom {
    url: String,
    http: reqwest::Client,
}

impl Prom {
    /// Runs instant query `expr`: its result vector, or the server's error
    /// (a warning counts as one).
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.url), &[("query", expr)])
            .map_err(|e| e.to_string())?;
        let resp = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        if let Some(w) = body.get("warnings").filter(|w| w.as_array().is_some_and(|a| !a.is_empty())) {
            return Err(format!("warnings: {w}"));
        }
        Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// The value of `expr`'s single result (its first one), `None` when empty.
    async fn value(&self, expr: &str) -> Option<f64> {
        let result = self.query(expr).await.unwrap_or_else(|e| panic!("{expr}: {e}"));
        result.first().and_then(|r| r["value"][1].as_str()).and_then(|v| v.parse().ok())
    }

    /// Waits until `expr`'s value is `want`.
    async fn wait_value(&self, expr: &str, want: f64) {
        wait_for(LONG, &format!("{expr} == {want}"), || async { self.value(expr).await == Some(want) }).await;
    }
}

/// Removes the test's file_sd file when the test ends, however it ends.
struct Targets(PathBuf);

impl Drop for Targets {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(alert name, expr)` of every rule in an alert rules file. Reads the
/// two forms the file uses (documented at its top): `expr: <one line>` and
/// `expr: |` followed by a more indented block; panics on any other.
fn rule_exprs(yaml: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = yaml.lines().collect();
    let (mut out, mut name) = (Vec::new(), String::new());
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(n) = trimmed.strip_prefix("alert:").or_else(|| trimmed.strip_prefix("record:")) {
            name = n.trim().to_string();
        } else if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            let indent = line.len() - line.trim_start().len();
            if rest == "|" || rest == "|-" {
                let mut block = Vec::new();
                while i + 1 < lines.len() {
                    let next = lines[i + 1];
                    if !next.trim().is_empty() && next.len() - next.trim_start().len() <= indent {
                        break;
                    }
                    block.push(next.trim());
                    i += 1;
                }
                out.push((name.clone(), block.join("\n").trim().to_string()));
            } else {
                assert!(!rest.is_empty() && !rest.starts_with('>'), "{name}: use `expr: <line>` or `expr: |`");
                let unquoted = rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')).unwrap_or(rest);
                out.push((name.clone(), unquoted.to_string()));
            }
        }
        i += 1;
    }
    out
}

/// `(panel title, expr)` of every query target of a Grafana dashboard,
/// rows' nested panels included.
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_else(|| panic!("a target of {} has no expr", p["title"]));
                out.push((p["title"].as_str().unwrap_or_default().to_string(), expr.to_string()));
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

#[test]
fn the_rule_reader_reads_both_forms() {
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n      - alert: B\n        expr: |\n          sum(x)\n            / sum(y) > 1\n        labels: {}\n";
    assert_eq!(
        rule_exprs(yaml),
        vec![("A".to_string(), "up == 0".to_string()), ("B".to_string(), "sum(x)\n/ sum(y) > 1".to_string())]
    );
}

#[tokio::test]
async fn prometheus_scrapes_the_stack_and_every_shipped_query_runs() {
    let (Ok(url), Ok(targets_dir)) = (std::env::var("YADTQ_PROMETHEUS_URL"), std::env::var("YADTQ_PROMETHEUS_TARGETS"))
    else {
        eprintln!(
            "SKIPPED: YADTQ_PROMETHEUS_URL / YADTQ_PROMETHEUS_TARGETS are not set; scripts/test.sh starts \
             Prometheus (scripts/prometheus.sh) and sets them"
        );
        return;
    };
    let t0 = Instant::now();
    let prom = Prom { url, http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap() };
    let stack = Stack::new("prometheus").await;
    let ns = stack.namespace.clone();
    let gw = stack.gateway(&[]).await;
    // One token for both targets: a gateway key with the `metrics` scope,
    // and the worker's metrics token.
    let token = mint_key(&stack.db, "default", &[yadtq_core::auth::Scope::Metrics], None).await;
    let credentials = std::env::var("YADTQ_PROMETHEUS_CREDENTIALS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&targets_dir).join("..").join("scrape.token"));
    std::fs::write(&credentials, &token).expect("write the scrape credentials");
    let admin = format!("127.0.0.1:{}", free_port());
    let mut w = stack
        .with_env(&[("YADTQ_WORKER_METRICS_TOKEN", &token)])
        .worker("worker", &["--admin-listen", &admin, "--concurrency", "4"])
        .await;
    stack.wait_assigned(&w).await;

    // Targets left by an earlier run that was killed (its Drop never ran)
    // would be down, and meet the worker-down condition below.
    for old in std::fs::read_dir(&targets_dir).into_iter().flatten().flatten() {
        if old.file_name().to_string_lossy().starts_with("t_prometheus_") {
            let _ = std::fs::remove_file(old.path());
        }
    }
    let gw_addr = gw.base.trim_start_matches("http://").to_string();
    let file = Path::new(&targets_dir).join(format!("{ns}.json"));
    let sd = json!([
        {"targets": [gw_addr], "labels": {"job": "yadtq-gateway", "yadtq_test": ns}},
        {"targets": [admin], "labels": {"job": "yadtq-worker", "yadtq_test": ns}},
    ]);
    // Written whole, then renamed, so Prometheus never reads half a file.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, sd.to_string()).expect("write file_sd targets");
    std::fs::rename(&tmp, &file).expect("move file_sd targets");
    let _targets = Targets(file);
    let sel = format!("yadtq_test=\"{ns}\"");
    prom.wait_value(&format!("count(up{{{sel}}} == 1)"), 2.0).await;

    // A bounded load: successes, permanent failures, retries, one poison record.
    let mut ids = stack.submit_many(&gw, 200, |i| json!({"task": "multiply", "args": [i, 3]})).await;
    ids.extend(stack.submit_many(&gw, 5, |_| json!({"task": "fail", "args": ["boom"], "max_retries": 0})).await);
    let flaky =
        json!({"task": "flaky", "args": [2], "max_retries": 3, "retry_backoff_base": 0.1, "retry_backoff_cap": 0.2});
    ids.extend(stack.submit_many(&gw, 3, |_| flaky.clone()).await);
    let producer: FutureProducer = kafka_config(&stack.kafka).create().unwrap();
    let topic = format!("{ns}.yadtq.tasks");
    producer.send(FutureRecord::<str, [u8]>::to(&topic).payload(b"not an envelope"), LONG).await.unwrap();
    wait_for(LONG, "the load to be running or done", || async {
        prom.value(&format!("sum(rate(yadtq_tasks_finished_total{{{sel}}}[30s]))")).await.is_some_and(|v| v > 0.0)
    })
    .await;
    stack.wait_terminal(&ids, LONG).await;

    // The workers' counters, as Prometheus scraped them.
    let finished = |outcome: &str| format!("sum(yadtq_tasks_finished_total{{{sel}, outcome=\"{outcome}\"}})");
    prom.wait_value(&finished("success"), 203.0).await;
    prom.wait_value(&finished("failed"), 5.0).await;
    prom.wait_value(&finished("retry"), 3.0).await;
    prom.wait_value(&format!("sum(yadtq_tasks_started_total{{{sel}, queue=\"default\"}})"), 211.0).await;
    prom.wait_value(&format!("sum(yadtq_task_queue_wait_seconds_count{{{sel}, queue=\"default\"}})"), 211.0).await;
    prom.wait_value(&format!("sum(yadtq_dead_letters_total{{{sel}, result=\"written\"}})"), 1.0).await;
    prom.wait_value(&format!("sum(yadtq_tasks_submitted_total{{{sel}}})"), 208.0).await;
    prom.wait_value(&format!("max(yadtq_worker_concurrency{{{sel}}})"), 4.0).await;
    // A window longer than the test, so the rate cannot have decayed to 0.
    let rate = prom.value(&format!("sum(rate(yadtq_tasks_finished_total{{{sel}}}[5m]))")).await;
    assert!(rate.is_some_and(|r| r > 0.0), "finished rate just after the load: {rate:?}");

    // The leader's samples: one process exports them, so sums count each task once.
    prom.wait_value(&format!("count(yadtq_leader{{{sel}}} == 1)"), 1.0).await;
    prom.wait_value(&format!("sum(yadtq_leader{{{sel}}})"), 1.0).await;
    let tasks = |status: &str| format!("sum(yadtq_queue_tasks{{{sel}, queue=\"default\", status=\"{status}\"}})");
    prom.wait_value(&tasks("success"), 203.0).await;
    prom.wait_value(&tasks("failed"), 5.0).await;
    prom.wait_value(&tasks("queued"), 0.0).await;
    prom.wait_value(&tasks("processing"), 0.0).await;
    prom.wait_value(&format!("count(yadtq_queue_tasks{{{sel}, queue=\"default\", status=\"success\"}})"), 1.0).await;
    prom.wait_value(&format!("sum(yadtq_publisher_backlog{{{sel}}})"), 0.0).await;
    prom.wait_value(&format!("sum(yadtq_workers_alive{{{sel}}})"), 1.0).await;
    prom.wait_value(&format!("max(yadtq_queue_oldest_queued_age_seconds{{{sel}, queue=\"default\"}})"), 0.0).await;
    // librdkafka's statistics: the worker owns all 12 partitions, all done.
    prom.wait_value(&format!("count(yadtq_consumer_lag{{{sel}}})"), 12.0).await;
    prom.wait_value(&format!("sum(yadtq_consumer_lag{{{sel}}})"), 0.0).await;
    let age = prom.value(&format!("max(yadtq_worker_heartbeat_age_seconds{{{sel}}})")).await;
    assert!(age.is_some_and(|a| a < 7.0), "heartbeat age of a healthy worker: {age:?}");

    // Every shipped expression runs; the dashboard's return data.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/yadtq.json")).unwrap()).unwrap();
    let panels = dashboard_exprs(&dashboard);
    let rules = rule_exprs(&std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap());
    assert!(panels.len() >= 20 && rules.len() >= 10, "{} panel and {} rule exprs", panels.len(), rules.len());
    let mut failures = Vec::new();
    for (title, expr) in &panels {
        let expr = expr.replace("$__rate_interval", "30s");
        match prom.query(&expr).await {
            Err(e) => failures.push(format!("dashboard panel {title:?}: {expr}: {e}")),
            Ok(r) if r.is_empty() => failures.push(format!("dashboard panel {title:?}: {expr}: no data")),
            Ok(_) => {}
        }
    }
    let mut firing = Vec::new();
    for (name, expr) in &rules {
        match prom.query(expr).await {
            Err(e) => failures.push(format!("alert {name}: {expr}: {e}")),
            Ok(r) if !r.is_empty() => firing.push(name.as_str()),
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{} failing shipped queries:\n{}", failures.len(), failures.join("\n"));
    // A healthy stack: only what this load provoked (the poison record, the
    // `fail` task's 100 % failures) meets its alert's condition.
    firing.sort_unstable();
    assert_eq!(firing, ["YadtqDeadLetters", "YadtqTaskFailureRatio"], "alert conditions met");
    // The server loaded the same rules, and evaluates each without error.
    let loaded: Value = prom.http.get(format!("{}/api/v1/rules", prom.url)).send().await.unwrap().json().await.unwrap();
    let group = loaded["data"]["groups"].as_array().into_iter().flatten().find(|g| g["name"] == "yadtq");
    if let Some(group) = group {
        let rules_loaded = group["rules"].as_array().unwrap();
        assert_eq!(rules_loaded.len(), rules.len(), "rules loaded by the server vs read from the file");
        for r in rules_loaded {
            assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
        }
    }

    // What one scrape costs, as Prometheus measured it.
    for job in ["yadtq-gateway", "yadtq-worker"] {
        let l = format!("{sel}, job=\"{job}\"");
        let dur = prom.value(&format!("max_over_time(scrape_duration_seconds{{{l}}}[1m])")).await;
        let samples = prom.value(&format!("max(scrape_samples_scraped{{{l}}})")).await;
        eprintln!("{job}: one scrape took at most {:.1} ms, {samples:?} samples", dur.unwrap_or(f64::NAN) * 1000.0);
    }

    // And measured here: five scrapes of each, idle after the load.
    for (job, base) in [("yadtq-gateway", gw.base.clone()), ("yadtq-worker", format!("http://{admin}"))] {
        let mut took = Vec::new();
        let mut series = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let scrape = prom.http.get(format!("{base}/metrics")).bearer_auth(&token).send();
            let body = scrape.await.unwrap().text().await.unwrap();
            took.push(started.elapsed().as_secs_f64() * 1000.0);
            series = body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
        }
        took.sort_by(f64::total_cmp);
        eprintln!("{job}: /metrics in {:.1} ms (median of 5, min {:.1}), {series} series", took[2], took[0]);
    }

    // A worker killed during a task: the worker-down condition sees it, and
    // the leader (the gateway) counts the rescue once its heartbeat is old.
    let worker_id = stack.worker_id(&w).await;
    assert_eq!(gw.submit(&json!({"task": "sleep", "args": [60]})).await.status, 202);
    stack.wait_processing_on(worker_id, 1, LONG).await;
    w.kill9();
    let down = rules.iter().find(|(n, _)| n == "YadtqWorkerDown").map(|(_, e)| e.clone()).unwrap();
    wait_for(LONG, "the worker-down condition for the killed worker", || async {
        let r = prom.query(&down).await.unwrap_or_default();
        r.iter().any(|s| s["metric"]["yadtq_test"] == ns.as_str())
    })
    .await;
    prom.wait_value(&format!("sum(yadtq_tasks_rescued_total{{{sel}, result=\"requeued\"}})"), 1.0).await;
    prom.wait_value(&format!("sum(yadtq_workers_alive{{{sel}}})"), 0.0).await;
    prom.wait_value(&tasks("queued"), 1.0).await;
    eprintln!("prometheus test wall time: {:.1} s", t0.elapsed().as_secs_f64());
}
