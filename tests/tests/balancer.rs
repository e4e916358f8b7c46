//! Gateways behind a load balancer, as the design card deploys them: a real
//! nginx (Debian's, installed by scripts/test.sh) round-robins two gateways.
//! Through it a client submits and reads its own writes whichever gateway
//! answers, long-polls, follows an event stream as it happens, repeats a
//! submission idempotently, and keeps submitting when one gateway dies.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use yadtq_tests::{free_port, wait_for, Stack};

/// The nginx binary: `YADTQ_NGINX`, else the Debian path or `nginx` on PATH.
fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("YADTQ_NGINX") {
        return Some(p.into());
    }
    ["/usr/sbin/nginx", "/usr/bin/nginx"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// An nginx in front of `upstreams` (`host:port`), on its own port and
/// prefix directory; killed on drop.
struct Balancer {
    base: String,
    child: Child,
}

impl Balancer {
    async fn start(bin: &PathBuf, dir: &std::path::Path, upstreams: &[&str]) -> Self {
        let port = free_port();
        let servers: String =
            upstreams.iter().map(|u| format!("        server {u} max_fails=1 fail_timeout=30s;\n")).collect();
        // The settings of deploy/nginx.conf that matter to clients: HTTP/1.1
        // keep-alive upstream, no buffering (event streams), retry another
        // gateway only when the connection failed before a request was sent.
        let conf = format!(
            "daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream yadtq_gateways {{
{servers}        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 8m;
        location / {{
            proxy_pass http://yadtq_gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 2;
            proxy_connect_timeout 2s;
        }}
    }}
}}
",
            dir = dir.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let base = format!("http://127.0.0.1:{port}");
        let url = format!("{base}/healthz");
        wait_for(Duration::from_secs(20), "nginx in front of the gateways", || async {
            reqwest::get(&url).await.is_ok_and(|r| r.status().is_success())
        })
        .await;
        Balancer { base, child }
    }
}

impl Drop for Balancer {
    /// SIGTERM, nginx's fast shutdown: the master stops its workers before it
    /// exits (a SIGKILLed master would leave them running, still listening).
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let lb = Balancer::start(&nginx, &dir, &upstreams).await;
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
