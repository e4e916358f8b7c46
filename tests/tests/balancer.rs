//! Gateways behind a load balancer, as the design card deploys them: a real
//! nginx (Debian's, installed by scripts/test.sh) round-robins two gateways.
//! Through it a client submits and reads its own writes whichever gateway
//! answers, long-polls, follows an event stream as it happens, repeats a
//! submission idempotently, and keeps submitting when one gateway dies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use yadtq_tests::{free_port, wait_for, write_nginx_conf, Stack};

/// The nginx binary: `YADTQ_NGINX`, else the Debian path or `nginx` on PATH.
fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YADTQ_NGINX") {
        return Some(p.into());
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// The HAProxy binary: `YADTQ_HAPROXY`, else Debian's.
fn haproxy_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YADTQ_HAPROXY") {
        return Some(p.into());
    }
    ["/usr/sbin/haproxy", "/usr/bin/haproxy"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// The deploy file `rel` (under `deploy/`) as it is, but for the gateways'
/// addresses (`gateway-1:8080`, `gateway-2:8080`) and the listening port
/// (`listen 8080;`, `bind :8080`), each of which must be in it.
fn deploy_file(rel: &str, upstreams: &[&str], port: u16) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = text.clone();
    for (i, up) in upstreams.iter().enumerate() {
        let name = format!("gateway-{}:8080", i + 1);
        assert!(out.contains(&name), "{rel} names {name}");
        out = out.replace(&name, up);
    }
    let listen =
        [("listen 8080;", format!("listen 127.0.0.1:{port};")), ("bind :8080", format!("bind 127.0.0.1:{port}"))];
    let before = out.clone();
    for (from, to) in listen {
        out = out.replace(from, &to);
    }
    assert_ne!(out, before, "{rel} listens on 8080");
    out
}

/// Which load balancer, each run from its deploy file.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// deploy/nginx/yadtq.conf (what deploy/nginx.conf includes).
    Nginx,
    /// deploy/haproxy.cfg.
    Haproxy,
}

/// A load balancer in front of `upstreams` (`host:port`), on its own port
/// and directory; stopped on drop.
struct Balancer {
    base: String,
    child: Child,
}

impl Balancer {
    async fn start(kind: Kind, bin: &Path, dir: &Path, upstreams: &[&str]) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let mut cmd = Command::new(bin);
        match kind {
            Kind::Nginx => {
                std::fs::write(dir.join("yadtq.conf"), deploy_file("nginx/yadtq.conf", upstreams, port)).unwrap();
                // The process around the deploy file: foreground, files in `dir`.
                let conf = write_nginx_conf(dir, &format!("    include {}/yadtq.conf;", dir.display()));
                cmd.arg("-p").arg(dir).arg("-c").arg(conf);
            }
            Kind::Haproxy => {
                std::fs::write(dir.join("haproxy.cfg"), deploy_file("haproxy.cfg", upstreams, port)).unwrap();
                cmd.arg("-db").arg("-f").arg(dir.join("haproxy.cfg"));
            }
        }
        let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child =
            cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let base = format!("http://127.0.0.1:{port}");
        let url = format!("{base}/healthz");
        wait_for(Duration::from_secs(20), &format!("{kind:?} in front of the gateways"), || async {
            reqwest::get(&url).await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        Balancer { base, child }
    }
}

impl Drop for Balancer {
    /// SIGTERM: nginx's fast shutdown, the master stops its workers before it
    /// exits (a SIGKILLed master would leave them running, still listening);
    /// HAProxy's hard stop.
    fn drop(&mut self) {
        yadtq_tests::terminate(&mut self.child, Duration::from_secs(10));
    }
}

async fn post(http: &reqwest::Client, url: String, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = http.post(url).json(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let r = req.send().await.expect("POST through the balancer");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.expect("GET through the balancer");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Requests to the API the gateway at `base` answered (its
/// `yadtq_http_requests_total`, without `/metrics` and `/healthz`), and how
/// many of them were `POST /tasks` answered 202.
async fn answered_by(base: &str, key: &str) -> (f64, f64) {
    let scrape = reqwest::Client::new().get(format!("{base}/metrics")).bearer_auth(key).send();
    let body = scrape.await.unwrap().text().await.unwrap();
    let samples: Vec<(&str, f64)> = body
        .lines()
        .filter(|l| l.starts_with("yadtq_http_requests_total{"))
        .filter(|l| !l.contains("route=\"/metrics\"") && !l.contains("route=\"/healthz\""))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(labels, v)| Some((labels, v.parse::<f64>().ok()?))))
        .collect();
    let accepted = samples
        .iter()
        .filter(|(l, _)| {
            l.contains("method=\"POST\"") && l.contains("route=\"/tasks\"") && l.contains("status=\"202\"")
        })
        .map(|(_, v)| v)
        .sum();
    (samples.iter().map(|(_, v)| v).sum(), accepted)
}

#[tokio::test]
async fn clients_behind_a_load_balancer_see_one_queue_and_survive_a_gateway_crash() {
    let Some(nginx) = nginx_binary() else {
        // scripts/test.sh installs it; a bare `cargo test` on a machine without it skips.
        eprintln!("skipped: no nginx binary (scripts/test.sh installs Debian's nginx-light)");
        return;
    };
    let stack = Stack::new("balancer").await;
    let a = stack.gateway(&[]).await;
    let mut b = stack.gateway(&[]).await;
    let dir = std::env::temp_dir().join(format!("yadtq-balancer-{}", free_port()));
    let upstreams = [a.base.trim_start_matches("http://"), b.base.trim_start_matches("http://")];
    let lb = Balancer::start(Kind::Nginx, &nginx, &dir, &upstreams).await;
    let http = reqwest::Client::builder().default_headers(yadtq_tests::bearer_headers(&stack.api_key)).build().unwrap();

    // An event stream opened through the balancer before any worker runs:
    // its first event must arrive now, not when the task ends.
    let (status, task) =
        post(&http, format!("{}/tasks", lb.base), &json!({"task": "sleep", "args": [1.5]}), None).await;
    assert_eq!(status, 202, "{task}");
    let watched = task["id"].as_str().unwrap().to_string();
    let mut stream = http.get(format!("{}/tasks/{watched}/events", lb.base)).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await;
    let first =
        String::from_utf8_lossy(&first.expect("an event through the balancer before the task ends").unwrap().unwrap())
            .into_owned();
    assert!(first.contains("\"status\":\"queued\""), "{first}");

    let _worker = stack.worker("worker", &[]).await;

    // Submissions spread over both gateways; each reads back at once
    // through the balancer, whichever gateway answers.
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, t) =
            post(&http, format!("{}/tasks", lb.base), &json!({"task": "multiply", "args": [i, 3]}), None).await;
        assert_eq!(status, 202, "{t}");
        let id = t["id"].as_str().unwrap().to_string();
        let (read, back) = get(&http, format!("{}/tasks/{id}", lb.base)).await;
        assert_eq!((read, back["id"].as_str()), (200, Some(id.as_str())), "read-your-write through the balancer");
        ids.push(id);
    }
    let (on_a, on_b) = (answered_by(&a.base, &stack.api_key).await, answered_by(&b.base, &stack.api_key).await);
    assert!(on_a.0 >= 1.0 && on_b.0 >= 1.0, "both gateways answered requests: {on_a:?} and {on_b:?}");
    assert_eq!(on_a.1 + on_b.1, 21.0, "every submission was accepted once");

    // Long-poll through the balancer answers at the outcome.
    let (status, done) = get(&http, format!("{}/tasks/{}?wait=30", lb.base, ids[7])).await;
    assert_eq!((status, done["status"].as_str(), done["result"].clone()), (200, Some("success"), json!(21)));

    // The same Idempotency-Key twice, on whichever gateways: one task.
    let body = json!({"task": "multiply", "args": [6, 7]});
    let (first_status, once) = post(&http, format!("{}/tasks", lb.base), &body, Some("lb-key-1")).await;
    let (second_status, again) = post(&http, format!("{}/tasks", lb.base), &body, Some("lb-key-1")).await;
    assert_eq!((first_status, second_status), (202, 200));
    assert_eq!(once["id"], again["id"]);

    // The watched task's stream ends with its success.
    let mut rest = first;
    while let Ok(Some(chunk)) =
        tokio::time::timeout(Duration::from_secs(60), stream.chunk()).await.expect("stream ends")
    {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(rest.contains("\"status\":\"processing\"") && rest.contains("\"status\":\"success\""), "{rest}");

    // One gateway dies: every submission still gets its 202 (nginx retries
    // a connection that fails before the request is sent) and runs.
    b.proc.kill9();
    for i in 0..20 {
        let (status, t) =
            post(&http, format!("{}/tasks", lb.base), &json!({"task": "add", "args": [i, 1000]}), None).await;
        assert_eq!(status, 202, "submission {i} after the crash: {t}");
        ids.push(t["id"].as_str().unwrap().to_string());
    }
    stack.wait_terminal(&ids, Duration::from_secs(120)).await;
    assert_eq!(stack.count_status(&ids, "success").await, ids.len() as i64);
    drop(lb);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn haproxy_from_its_deploy_file_serves_the_api_and_survives_a_gateway_crash() {
    let Some(haproxy) = haproxy_binary() else {
        eprintln!("skipped: no haproxy binary (scripts/test.sh installs Debian's haproxy)");
        return;
    };
    let stack = Stack::new("balancer_haproxy").await;
    let a = stack.gateway(&[]).await;
    let mut b = stack.gateway(&[]).await;
    let _worker = stack.worker("worker", &[]).await;
    let dir = std::env::temp_dir().join(format!("yadtq-haproxy-{}", free_port()));
    let upstreams = [a.base.trim_start_matches("http://"), b.base.trim_start_matches("http://")];
    let lb = Balancer::start(Kind::Haproxy, &haproxy, &dir, &upstreams).await;
    let http = reqwest::Client::builder().default_headers(yadtq_tests::bearer_headers(&stack.api_key)).build().unwrap();

    // Submit, read back at once, follow the event stream as it happens.
    let (status, t) = post(&http, format!("{}/tasks", lb.base), &json!({"task": "sleep", "args": [0.5]}), None).await;
    assert_eq!(status, 202, "{t}");
    let id = t["id"].as_str().unwrap().to_string();
    let (read, back) = get(&http, format!("{}/tasks/{id}", lb.base)).await;
    assert_eq!((read, back["id"].as_str()), (200, Some(id.as_str())));
    let mut stream = http.get(format!("{}/tasks/{id}/events", lb.base)).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut events = String::new();
    while let Ok(Some(chunk)) =
        tokio::time::timeout(Duration::from_secs(30), stream.chunk()).await.expect("the stream ends")
    {
        events.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(events.contains("\"status\":\"processing\"") && events.contains("\"status\":\"success\""), "{events}");
    // Long-poll.
    let (_, t) = post(&http, format!("{}/tasks", lb.base), &json!({"task": "multiply", "args": [6, 7]}), None).await;
    let (status, done) = get(&http, format!("{}/tasks/{}?wait=30", lb.base, t["id"].as_str().unwrap())).await;
    assert_eq!((status, done["result"].clone()), (200, json!(42)));

    // One gateway dies: HAProxy sends refused connections to the other.
    b.proc.kill9();
    let mut ids = Vec::new();
    for i in 0..10 {
        let (status, t) =
            post(&http, format!("{}/tasks", lb.base), &json!({"task": "add", "args": [i, 1]}), None).await;
        assert_eq!(status, 202, "submission {i} after the crash: {t}");
        ids.push(t["id"].as_str().unwrap().to_string());
    }
    stack.wait_terminal(&ids, Duration::from_secs(60)).await;
    assert_eq!(stack.count_status(&ids, "success").await, ids.len() as i64);
    drop(lb);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The Python the SDK load runs with: `YADTQ_TEST_PYTHON` (scripts/test.sh
/// sets it to the SDKs' pinned virtual environment), else that environment
/// when it exists.
fn sdk_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YADTQ_TEST_PYTHON") {
        return Some(p.into());
    }
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/clients");
    std::fs::read_dir(cache).ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("bin/python")).find(|p| p.exists())
}

/// Issue 23: a gateway SIGKILLed behind nginx in the middle of a load costs
/// the SDK's clients nothing: no error reaches them (the SDK retries nginx's
/// 502 with the Idempotency-Key it puts on every submit) and every task is
/// stored and run once.
#[tokio::test]
async fn a_gateway_killed_behind_nginx_mid_load_costs_sdk_clients_nothing() {
    let (Some(nginx), Some(python)) = (nginx_binary(), sdk_python()) else {
        eprintln!("skipped: needs nginx and the SDKs' Python (scripts/test.sh provides both)");
        return;
    };
    const TASKS: usize = 600;
    let stack = Stack::new("balancer_sdk").await;
    let a = stack.gateway(&[]).await;
    let mut b = stack.gateway(&[]).await;
    let _worker = stack.worker("worker", &["--concurrency", "16"]).await;
    let dir = std::env::temp_dir().join(format!("yadtq-balancer-sdk-{}", free_port()));
    let upstreams = [a.base.trim_start_matches("http://"), b.base.trim_start_matches("http://")];
    let lb = Balancer::start(Kind::Nginx, &nginx, &dir, &upstreams).await;

    // YADTQ_TEST_SDK_PATH: another copy of the SDK (e.g. an older release's).
    let sdk = std::env::var_os("YADTQ_TEST_SDK_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/failover_load.py");
    let load = tokio::process::Command::new(&python)
        .arg(&script)
        .args([lb.base.as_str(), &TASKS.to_string(), "16", "lb"])
        .env("PYTHONPATH", &sdk)
        .env("YADTQ_API_KEY", &stack.api_key)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the SDK load");

    // Kill one gateway once a quarter of the tasks are in.
    wait_for(Duration::from_secs(60), "a quarter of the load submitted", || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
        n >= (TASKS / 4) as i64
    })
    .await;
    b.proc.kill9();
    let out =
        tokio::time::timeout(Duration::from_secs(120), load.wait_with_output()).await.expect("the load ends").unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("the load's report");
    let ids: Vec<String> = report["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let errors = report["errors"].as_array().unwrap();
    let tags: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT args->>0) FROM tasks").fetch_one(&stack.db).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    stack.wait_terminal(&ids, Duration::from_secs(120)).await;
    let ran_more: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tasks WHERE attempts <> 1").fetch_one(&stack.db).await.unwrap();
    eprintln!(
        "failover through nginx: {} tasks accepted of {TASKS}, {} client-visible errors, {rows} rows for {tags} \
         submissions, {ran_more} not run exactly once",
        ids.len(),
        errors.len()
    );
    assert!(errors.is_empty(), "client-visible errors: {errors:?}");
    assert_eq!((ids.len(), tags, rows), (TASKS, TASKS as i64, TASKS as i64), "each submission stored once");
    assert_eq!(stack.count_status(&ids, "success").await, TASKS as i64);
    stack.assert_ran_once(&ids, "the failover load").await;
    drop(lb);
    let _ = std::fs::remove_dir_all(&dir);
}
