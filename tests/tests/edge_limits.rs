//! The gateway bounds every client: slow and idle connections are closed,
//! connections and waiters are capped, waiters share one read per change,
//! CORS is an allow-list, bodies must be JSON, and clients are rate limited.
//! End to end against the real gateway binary, loopback only, every loop
//! bounded in count and time.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use yadtq_tests::{metric_sample, wait_for, Answer, Stack};

const LONG: Duration = Duration::from_secs(120);

/// Committed transactions of the test's database so far
/// (`pg_stat_database.xact_commit`).
async fn commits(db: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(db)
        .await
        .expect("xact_commit")
}

/// One change of task `id` as a worker makes it: an update and its NOTIFY,
/// in one transaction.
async fn change(db: &mut PgConnection, id: &str, sql_set: &str) {
    let q = format!(
        "WITH u AS (UPDATE tasks SET {sql_set} WHERE id = $1 RETURNING id) SELECT pg_notify('{}', id) FROM u",
        yadtq_core::store::events::TASK_EVENTS_CHANNEL
    );
    sqlx::query(&q).bind(id).execute(db).await.expect("change the task");
}

/// Waits until the gateway's backends have exited, so their statistics are
/// flushed (PostgreSQL 15 reports a backend's counts at its exit or every few
/// seconds, not at each commit).
async fn backends_gone(db: &mut PgConnection) {
    let deadline = Instant::now() + LONG;
    loop {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut *db)
        .await
        .expect("sessions");
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{n} sessions of the gateway still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the gateway sends on `s` until it closes the connection.
async fn until_closed(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(LONG, s.read_to_end(&mut got))
        .await
        .expect("the gateway closes the connection")
        .expect("read");
    String::from_utf8_lossy(&got).into_owned()
}

/// One request on a connection of its own, `Connection: close`; the whole answer.
async fn raw_get(addr: &str, path: &str) -> String {
    raw_get_as(addr, path, None).await
}

/// [`raw_get`] with `Authorization: Bearer <key>` when `key` is given.
async fn raw_get_as(addr: &str, path: &str, key: Option<&str>) -> String {
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    until_closed(&mut s).await
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A client that stalls is closed: half a header after the header timeout,
/// a silent connection too, an idle keep-alive connection after the idle
/// timeout, and a body that stops arriving is answered 408.
#[tokio::test]
async fn slow_and_idle_clients_are_closed() {
    let stack = Stack::new("slow_clients").await;
    let gw = stack.gateway(&["--header-read-timeout", "1", "--idle-timeout", "1", "--body-read-timeout", "1"]).await;
    let addr = gw.addr().to_string();

    let started = Instant::now();
    let mut half = TcpStream::connect(&addr).await.expect("connect");
    half.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await.expect("send");
    assert_eq!(until_closed(&mut half).await, "", "half a header: closed without an answer");
    println!("half a header held the connection {:.1} s (--header-read-timeout 1)", started.elapsed().as_secs_f64());

    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    assert_eq!(until_closed(&mut silent).await, "", "a connection that sends nothing is closed");

    let started = Instant::now();
    let mut idle = TcpStream::connect(&addr).await.expect("connect");
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.expect("send");
    let answer = until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "the request is answered, then the idle connection closed: {answer}");
    println!(
        "an idle keep-alive connection was closed after {:.1} s (--idle-timeout 1)",
        started.elapsed().as_secs_f64()
    );

    let mut stalled = TcpStream::connect(&addr).await.expect("connect");
    let key = &stack.api_key;
    let head = format!(
        "POST /tasks HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.expect("send");
    stalled.write_all(br#"{"task": "#).await.expect("send");
    let answer = until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    let body: Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or_default()).expect("a problem document");
    assert_eq!((body["status"].as_u64(), body["field"].as_str()), (Some(408), Some("body")), "{body}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(stored, 0, "nothing was submitted");
}

/// A client that sends requests and never reads the answers is closed once
/// a write has made no progress for `--write-timeout`, and its connection
/// is freed for others.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    let stack = Stack::new("stops_reading").await;
    let gw = stack.gateway(&["--write-timeout", "1", "--max-connections", "2"]).await;
    let addr = gw.addr().to_string();
    let closed = r#"yadtq_gateway_connections_closed_total{reason="write_timeout"}"#;
    assert_eq!(metric_sample(&gw.get("/metrics").await.text, closed), 0.0);

    // 200 pipelined requests for the OpenAPI document (about 120 KB each):
    // far more than the sockets' buffers hold while nobody reads.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let mut reader_gone = socket.connect(addr.parse().expect("addr")).await.expect("connect");
    let one = format!("GET /openapi.json HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    reader_gone.write_all(one.repeat(200).as_bytes()).await.expect("send");
    let started = Instant::now();
    wait_for(LONG, "the gateway closes the connection that does not read", || async {
        metric_sample(&gw.get("/metrics").await.text, closed) == 1.0
    })
    .await;
    println!(
        "a client that stopped reading held its connection {:.1} s (--write-timeout 1)",
        started.elapsed().as_secs_f64()
    );
    // The connection is gone: what it had not read never arrives.
    let whole = 200 * gw.get("/openapi.json").await.text.len();
    let mut rest = Vec::new();
    let end = tokio::time::timeout(LONG, reader_gone.read_to_end(&mut rest)).await.expect("the socket ends");
    assert!(end.is_err() || rest.len() < whole, "{} of {whole} bytes arrived", rest.len());
    // Both connection places are free again.
    assert!(raw_get(&addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(raw_get(&addr, "/healthz").await.starts_with("HTTP/1.1 200"));
}

/// Past `--max-connections`, a new connection waits in the accept backlog
/// and is served once another closes.
#[tokio::test]
async fn a_connection_past_the_cap_waits_for_a_free_one() {
    let stack = Stack::new("connection_cap").await;
    let gw = stack.gateway(&["--max-connections", "2", "--idle-timeout", "1", "--header-read-timeout", "60"]).await;
    let addr = gw.addr().to_string();
    // The harness's own keep-alive connection goes after the idle timeout:
    // then only the scrape's own connection is open.
    wait_for(LONG, "the gateway's connections to close", || async {
        metric_sample(&raw_get_as(&addr, "/metrics", Some(&stack.api_key)).await, "yadtq_gateway_connections_open")
            == 1.0
    })
    .await;
    let first = TcpStream::connect(&addr).await.expect("connect");
    let _second = TcpStream::connect(&addr).await.expect("connect");
    let mut third = TcpStream::connect(&addr).await.expect("the kernel's backlog takes the connection");
    third
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut byte)).await;
    assert!(early.is_err(), "two connections are open: the third is not served yet");
    drop(first);
    let answer = until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served once a connection closed: {answer}");
}

/// Past `--max-waiters`, long-polls and event streams are answered 503
/// with Retry-After; plain reads still work.
#[tokio::test]
async fn waiters_past_the_cap_get_503_with_retry_after() {
    let stack = Stack::new("waiter_cap").await;
    let gw = stack.gateway(&["--max-waiters", "2"]).await;
    let id = gw.submit(&json!({"task": "echo", "args": [1]})).await.body["id"].as_str().expect("id").to_string();
    let poll = format!("/tasks/{id}?wait=20");
    let held = futures::future::join(gw.get(&poll), gw.get(&poll));
    let check = async {
        wait_for(LONG, "two long-polls to wait", || async { gw.waiters().await == 2.0 }).await;
        let more = gw.get(&format!("/tasks/{id}?wait=5")).await;
        let stream = gw.get(&format!("/tasks/{id}/events")).await;
        let plain = gw.get(&format!("/tasks/{id}")).await;
        (more, stream, plain)
    };
    let ((a, b), (more, stream, plain)) = tokio::join!(held, check);
    for refused in [&more, &stream] {
        assert_eq!(refused.status, 503, "{}", refused.text);
        assert_eq!(refused.content_type, "application/problem+json");
        assert_eq!(header(refused, "retry-after"), Some("1"));
        assert!(refused.body["detail"].as_str().unwrap_or_default().contains("long-polls"), "{}", refused.text);
    }
    assert_eq!(plain.status, 200, "a read without wait is not a waiter");
    assert_eq!((a.status, b.status), (200, 200), "the held long-polls answer at their deadline");
}

/// Past `--max-concurrent-listings`, a listing waits `--listing-wait` and is
/// answered 503 with Retry-After, while a submission still gets its 202. The
/// cap is held by a `GET /workers` blocked on a lock of the `workers` table
/// (which submissions never touch).
#[tokio::test]
async fn listings_past_the_cap_get_503_while_submissions_pass() {
    let stack = Stack::new("listing_cap").await;
    let gw = stack.gateway(&["--max-concurrent-listings", "1", "--listing-wait", "0.5"]).await;
    let mut lock = PgConnection::connect(&stack.database_url).await.expect("connect");
    sqlx::query("BEGIN").execute(&mut lock).await.expect("begin");
    sqlx::query("LOCK TABLE workers IN ACCESS EXCLUSIVE MODE").execute(&mut lock).await.expect("lock");
    let held = gw.get("/workers");
    let check = async {
        wait_for(LONG, "the listing to hold the cap", || async {
            metric_sample(&gw.get("/metrics").await.text, "yadtq_gateway_listings") == 1.0
        })
        .await;
        let started = Instant::now();
        let refused = gw.get("/tasks").await;
        let waited = started.elapsed();
        let submitted = gw.submit(&json!({"task": "echo", "args": [1]})).await;
        sqlx::query("COMMIT").execute(&mut lock).await.expect("release the lock");
        (refused, waited, submitted)
    };
    let (workers, (refused, waited, submitted)) = tokio::join!(held, check);
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.content_type, "application/problem+json");
    assert_eq!(header(&refused, "retry-after"), Some("1"));
    assert!(refused.body["detail"].as_str().unwrap_or_default().contains("listings"), "{}", refused.text);
    assert!(waited >= Duration::from_millis(500), "it waited --listing-wait first: {waited:?}");
    assert_eq!(submitted.status, 202, "{}", submitted.text);
    assert_eq!(workers.status, 200, "the held listing answers once the lock is gone: {}", workers.text);
    assert_eq!(gw.get("/tasks").await.status, 200, "the cap is free again");
}

/// CORS: only the allowed origins get `Access-Control-Allow-Origin`, and a
/// preflight names the API's methods and headers; with no allow-list, no
/// CORS header at all.
#[tokio::test]
async fn cors_answers_only_the_allowed_origins() {
    let stack = Stack::new("cors").await;
    let gw = stack.gateway(&["--cors-allow-origins", "https://app.example,http://localhost:3000"]).await;
    let allowed = gw.send(Method::GET, "/healthz", &[("origin", "https://app.example")], None).await;
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some("https://app.example"));
    let other = gw.send(Method::GET, "/healthz", &[("origin", "https://evil.example")], None).await;
    assert_eq!(other.status, 200);
    assert_eq!(header(&other, "access-control-allow-origin"), None, "a disallowed origin gets no CORS header");

    let preflight = gw
        .send(
            Method::OPTIONS,
            "/tasks",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization, content-type"),
            ],
            None,
        )
        .await;
    assert_eq!(preflight.status, 200, "{}", preflight.text);
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some("http://localhost:3000"));
    let methods = header(&preflight, "access-control-allow-methods").unwrap_or_default().to_ascii_uppercase();
    assert!(methods.contains("GET") && methods.contains("POST"), "{methods}");
    let headers = header(&preflight, "access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(headers.contains("authorization") && headers.contains("content-type"), "{headers}");
    let evil = gw
        .send(
            Method::OPTIONS,
            "/tasks",
            &[("origin", "https://evil.example"), ("access-control-request-method", "POST")],
            None,
        )
        .await;
    assert_eq!(header(&evil, "access-control-allow-origin"), None);

    let plain = stack.gateway(&[]).await;
    let none = plain.send(Method::GET, "/healthz", &[("origin", "https://app.example")], None).await;
    assert_eq!(header(&none, "access-control-allow-origin"), None, "no allow-list: no CORS header");
}

/// A POST body that is not declared JSON is 415 naming `Content-Type`, on
/// every route; JSON with parameters is accepted.
#[tokio::test]
async fn a_post_body_that_is_not_json_is_415() {
    let stack = Stack::new("content_type").await;
    let gw = stack.gateway(&[]).await;
    let body = json!({"task": "echo", "args": [1]}).to_string();
    let form = gw
        .send(Method::POST, "/tasks", &[("content-type", "application/x-www-form-urlencoded")], Some(body.clone()))
        .await;
    assert_eq!((form.status, form.body["field"].as_str()), (415, Some("Content-Type")), "{}", form.text);
    assert_eq!(form.content_type, "application/problem+json");
    let ok = gw.send(Method::POST, "/tasks", &[("content-type", "application/json; charset=utf-8")], Some(body)).await;
    assert_eq!(ok.status, 202, "{}", ok.text);
    let id = ok.body["id"].as_str().expect("id");
    let text = gw
        .send(Method::POST, &format!("/tasks/{id}/cancel"), &[("content-type", "text/plain")], Some("x".into()))
        .await;
    assert_eq!((text.status, text.body["field"].as_str()), (415, Some("Content-Type")), "{}", text.text);
    let bare = gw.send(Method::POST, &format!("/tasks/{id}/cancel"), &[], None).await;
    assert_eq!(bare.status, 200, "a POST without a body needs no type: {}", bare.text);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&stack.db).await.unwrap();
    assert_eq!(stored, 1, "only the JSON submission was stored");
}

/// Past its rate, a client gets 429 with Retry-After; another client, and
/// the probes, are not limited by it.
#[tokio::test]
async fn a_client_past_its_rate_gets_429_with_retry_after() {
    let stack = Stack::new("rate_limit").await;
    let gw = stack.gateway(&["--rate-limit", "0.2", "--rate-limit-burst", "3"]).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let a = gw.get("/tasks?limit=1").await;
        statuses.push(a.status);
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429], "a burst of 3, then refused");
    let limited = limited.expect("a 429");
    assert_eq!(limited.content_type, "application/problem+json");
    let wait: u32 = header(&limited, "retry-after").and_then(|v| v.parse().ok()).expect("Retry-After in seconds");
    assert!((1..=5).contains(&wait), "one request every 5 s: retry within 5 s, got {wait}");
    assert_eq!(gw.get("/healthz").await.status, 200, "probes are never limited");
    let other = gw.send(Method::GET, "/tasks?limit=1", &[("authorization", "Bearer another-client")], None).await;
    assert_ne!(other.status, 429, "another client has its own bucket: {}", other.text);
}

/// 2,000 waiters on one task that changes 20 times, then finishes, half of
/// them long-polls and half event streams: every long-poll answers
/// `success`, every stream ends with it, and PostgreSQL saw a number of
/// transactions close to the number of changes, not to waiters × changes
/// (each waiter re-reading the row on each change cost 2,000 × 20 = 40,000).
#[tokio::test]
async fn waiters_on_one_task_share_one_read_per_change() {
    const WAITERS: usize = 2_000;
    const CHANGES: usize = 20;
    let mut stack = Stack::new("shared_waiters").await;
    stack.set_env("YADTQ_MAX_CONNECTIONS", "5000");
    stack.set_env("YADTQ_MAX_WAITERS", "5000");
    // The test's own single connection, so the sessions left are the gateway's.
    stack.db.close().await;
    let mut db = PgConnection::connect(&stack.database_url).await.expect("connect");
    let gw = stack.gateway(&[]).await;
    let id = gw.submit(&json!({"task": "echo", "args": [1]})).await.body["id"].as_str().expect("id").to_string();
    // No worker runs: the test plays the worker, so it knows every change.
    change(&mut db, &id, "status = 'processing', attempts = 1, started_at = now()").await;

    let polls: Vec<_> = (0..WAITERS)
        .map(|i| {
            let path = if i % 2 == 0 { format!("/tasks/{id}?wait=60") } else { format!("/tasks/{id}/events") };
            let gw = &gw;
            async move { (i % 2 == 1, gw.get(&path).await) }
        })
        .collect();
    let answers = futures::future::join_all(polls);
    let drive = async {
        wait_for(LONG, "every long-poll to wait", || async { gw.waiters().await >= WAITERS as f64 }).await;
        let before = (commits(&mut db).await, Instant::now());
        for i in 0..CHANGES {
            change(&mut db, &id, &format!("progress = '{{\"percent\": {i}}}'")).await;
            // One change at a time, as a handler reports progress.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        change(&mut db, &id, "status = 'success', result = '1', finished_at = now()").await;
        before
    };
    let (answers, before) = tokio::join!(answers, drive);
    let (before, started) = before;
    let window = started.elapsed().as_secs_f64();
    let mut outcomes = std::collections::BTreeMap::new();
    for (stream, a) in &answers {
        let last = if *stream {
            // The stream's last event carries the terminal status.
            let data = a.text.lines().filter_map(|l| l.strip_prefix("data:")).next_back().unwrap_or("{}");
            let task: serde_json::Value = serde_json::from_str(data.trim()).unwrap_or_default();
            format!("{} stream {}", a.status, task["status"].as_str().unwrap_or(""))
        } else {
            format!("{} long-poll {}", a.status, a.body["status"].as_str().unwrap_or(""))
        };
        *outcomes.entry(last).or_insert(0) += 1;
    }
    let succeeded = outcomes.get("200 long-poll success").copied().unwrap_or(0)
        + outcomes.get("200 stream success").copied().unwrap_or(0);
    drop(gw);
    backends_gone(&mut db).await;
    let spent = commits(&mut db).await - before;
    println!(
        "{WAITERS} long-polls and event streams, {} changes in {window:.1} s: {spent} PostgreSQL transactions ({:.0}/s); answers {outcomes:?}",
        CHANGES + 1,
        spent as f64 / window
    );
    assert_eq!(succeeded, WAITERS, "every long-poll answers the terminal status and every stream ends with it");
    assert!(spent < 20 * (CHANGES as i64 + 1), "{spent} transactions for {} changes", CHANGES + 1);
}
