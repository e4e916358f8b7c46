//! In-process tests of the router (no socket, no servers): the answers it
//! gives before a handler reaches PostgreSQL or Kafka. The state points at
//! addresses nothing listens on, so a request that did get that far would
//! answer 503 after the pool's acquire timeout instead of what is asserted.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use clap::Parser;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::config::GatewayConfig;
use crate::state::AppState;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    cfg: GatewayConfig,
}

/// The gateway's router over unreachable PostgreSQL and Kafka.
fn app() -> axum::Router {
    let cfg = Cli::try_parse_from([
        "yadtq-gateway",
        "--database-url",
        "postgres://yadtq@127.0.0.1:1/unreachable",
        "--kafka-bootstrap",
        "127.0.0.1:1",
        // The HTTP behaviour before a handler reaches PostgreSQL; a key
        // lookup would need it. `requests_without_a_key_are_refused` covers auth.
        "--auth",
        "off",
    ])
    .expect("test configuration parses")
    .cfg;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(500))
        .connect_lazy(&cfg.common.database_url)
        .expect("lazy pool");
    let (marker, _writer) = crate::marker::spawn(pool.clone());
    let state = AppState {
        events: crate::notify::spawn(cfg.common.database_url.clone(), pool.clone()),
        edge: crate::edge::Edge::new(&cfg.edge, cfg.common.db_pool_size),
        marker,
        inserter: Arc::new(crate::inserter::Inserter::new(pool.clone())),
        record_limits: Arc::new(yadtq_core::kafka::RecordLimits::new(1_000_000)),
        auth: Arc::new(crate::auth::Authenticator::new(&cfg.auth, pool.clone())),
        producer: yadtq_core::kafka::producer(&cfg.common, "yadtq-gateway-test").expect("producer"),
        routes: yadtq_core::tenants::Routes::new(cfg.common.names(), []),
        cfg: Arc::new(cfg),
        pool,
    };
    super::router(state)
}

/// What a client sees: status, the headers it reads, and the body as JSON.
struct Answer {
    status: u16,
    content_type: String,
    allow: Option<String>,
    body: Value,
}

async fn call(req: Request<Body>) -> Answer {
    let resp = app().oneshot(req).await.expect("router answers");
    let header = |n: header::HeaderName| resp.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let (status, content_type, allow) =
        (resp.status().as_u16(), header(header::CONTENT_TYPE).unwrap_or_default(), header(header::ALLOW));
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    Answer { status, content_type, allow, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn post(path: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut req = Request::post(path);
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Status and `field` of a problem document, after checking it is one.
fn problem(a: &Answer) -> (u16, &str) {
    assert_eq!(a.content_type, "application/problem+json", "{:?}", a.body);
    assert_eq!(a.body["status"], a.status, "{:?}", a.body);
    (a.status, a.body["field"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn a_body_not_sent_as_json_is_415() {
    let body = json!({"task": "multiply", "args": [4, 5]}).to_string();
    for path in ["/tasks", "/tasks/batch"] {
        let body = if path == "/tasks" { body.clone() } else { format!(r#"{{"tasks": [{body}]}}"#) };
        for ct in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let a = call(post(path, ct, &body)).await;
            assert_eq!(problem(&a), (415, "Content-Type"), "{path} with {ct:?}: {:?}", a.body);
            assert!(a.body["detail"].as_str().unwrap().contains("application/json"), "{:?}", a.body);
        }
    }
    // JSON media types pass the check: these reach validation (an invalid
    // task name, 400), which comes before any database access.
    for ct in ["application/json", "application/json; charset=utf-8", "application/vnd.yadtq+json"] {
        let a = call(post("/tasks", Some(ct), r#"{"task": 5}"#)).await;
        assert_eq!(problem(&a), (400, "task"), "{ct}: {:?}", a.body);
    }
}

#[tokio::test]
async fn a_nul_in_a_list_filter_is_400_naming_it() {
    for field in ["task", "queue"] {
        let a = call(get(&format!("/tasks?{field}=a%00b"))).await;
        assert_eq!(problem(&a), (400, field), "{:?}", a.body);
        assert!(a.body["detail"].as_str().unwrap().contains("NUL"), "{:?}", a.body);
    }
}

#[tokio::test]
async fn the_ids_dot_and_dot_dot_are_refused() {
    for id in [".", ".."] {
        for key in ["id", "task-id"] {
            let a = call(post("/tasks", Some("application/json"), &json!({"task": "echo", key: id}).to_string())).await;
            assert_eq!(problem(&a), (400, key), "{key} {id}: {:?}", a.body);
        }
        let batch = json!({"tasks": [{"task": "echo", "id": id}]}).to_string();
        let a = call(post("/tasks/batch", Some("application/json"), &batch)).await;
        assert_eq!(problem(&a), (400, "tasks[0].id"), "{:?}", a.body);
    }
    // Percent-encoded, they reach the handler as the id itself.
    let a = call(get("/tasks/%2E%2E")).await;
    assert_eq!(problem(&a), (400, "id"), "{:?}", a.body);
    // Dots within an id stay allowed.
    let a = call(post("/tasks", Some("application/json"), r#"{"task": 5, "id": "..a"}"#)).await;
    assert_eq!(problem(&a), (400, "task"), "{:?}", a.body);
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow_as_a_problem_document() {
    for (method, path, allow) in [
        ("DELETE", "/tasks", "POST,GET,HEAD"),
        ("PUT", "/tasks/t1", "GET,HEAD"),
        ("GET", "/tasks/t1/cancel", "POST"),
        ("POST", "/workers", "GET,HEAD"),
    ] {
        let a = call(Request::builder().method(method).uri(path).body(Body::empty()).unwrap()).await;
        assert_eq!(problem(&a).0, 405, "{method} {path}: {:?}", a.body);
        assert_eq!(a.allow.as_deref(), Some(allow), "{method} {path}");
        assert!(a.body["detail"].as_str().unwrap().contains(method), "{:?}", a.body);
    }
}

#[tokio::test]
async fn an_id_with_invalid_percent_encoding_is_a_problem_document() {
    for (method, path) in [
        ("GET", "/tasks/%FF"),
        ("GET", "/tasks/%FF/events"),
        ("GET", "/tasks/%FF/attempts"),
        ("POST", "/tasks/%FF/cancel"),
        ("POST", "/tasks/%FF/retry"),
    ] {
        let a = call(Request::builder().method(method).uri(path).body(Body::empty()).unwrap()).await;
        assert_eq!(problem(&a), (400, "id"), "{method} {path}: {:?}", a.body);
    }
}

#[tokio::test]
async fn a_request_target_too_long_is_414_as_a_problem_document() {
    // 20 KB. From 64 KiB on, the http crate cannot hold the URI: hyper
    // answers a bare 414 itself (docs/contract.md).
    for path in [format!("/tasks/{}", "a".repeat(20_000)), format!("/tasks?task={}", "a".repeat(20_000))] {
        let a = call(get(&path)).await;
        assert_eq!(problem(&a), (414, "path"), "{:?}", a.body);
    }
    // At the limit it reaches the handler (an id too long: 400).
    let path = format!("/tasks/{}", "a".repeat(super::MAX_URI_BYTES - "/tasks/".len()));
    assert_eq!(problem(&call(get(&path)).await), (400, "id"));
}

#[tokio::test]
async fn headers_too_large_are_431_as_a_problem_document() {
    let req = Request::get("/tasks/%2E%2E").header("x-big", "a".repeat(100_000)).body(Body::empty()).unwrap();
    let a = call(req).await;
    assert_eq!(problem(&a), (431, "headers"), "{:?}", a.body);
    let req = Request::get("/tasks/%2E%2E").header("x-big", "a".repeat(1_000)).body(Body::empty()).unwrap();
    assert_eq!(problem(&call(req).await), (400, "id"));
}

#[tokio::test]
async fn a_batch_idempotency_key_that_cannot_make_task_ids_is_400() {
    let batch = json!({"tasks": [{"task": "echo"}, {"task": "echo"}]}).to_string();
    // 127 characters: `<key>.1` would be 129.
    for key in ["a".repeat(127), "..".to_string(), "a b".to_string(), String::new()] {
        let req = Request::post("/tasks/batch")
            .header(header::CONTENT_TYPE, "application/json")
            .header("idempotency-key", &key)
            .body(Body::from(batch.clone()))
            .unwrap();
        let a = call(req).await;
        assert_eq!(problem(&a), (400, "Idempotency-Key"), "{key:?}: {:?}", a.body);
    }
    // A valid key still lets each task be checked as in POST /tasks (validation
    // comes before the database), its field under `tasks[i]`.
    let req = Request::post("/tasks/batch")
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "a".repeat(126))
        .body(Body::from(json!({"tasks": [{"task": "echo"}, {"task": 5}]}).to_string()))
        .unwrap();
    assert_eq!(problem(&call(req).await), (400, "tasks[1].task"));
}

#[test]
fn every_503_documents_retry_after_and_submissions_link_to_their_task() {
    let doc = crate::openapi::full();
    let mut unavailable = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(r) = op["responses"].get("503") else { continue };
            if r["content"].get("application/problem+json").is_none() {
                continue; // /readyz: a Health body, no Retry-After
            }
            unavailable += 1;
            assert_eq!(r["headers"]["Retry-After"]["schema"]["type"], "integer", "{method} {path}");
        }
    }
    assert!(unavailable >= 9, "{unavailable}");
    for (path, pointer) in [("/tasks", "$response.body#/id"), ("/tasks/batch", "$response.body#/tasks/0/id")] {
        for code in ["200", "202"] {
            let links = &doc["paths"][path]["post"]["responses"][code]["links"];
            for op in ["getTask", "cancelTask", "retryTask", "listAttempts", "streamTaskEvents"] {
                assert_eq!(links[op]["operationId"], op, "{path} {code}");
                assert_eq!(links[op]["parameters"]["id"], pointer, "{path} {code} {op}");
                assert!(links[op].get("operation_id").is_none(), "{path} {code} {op}: {}", links[op]);
            }
        }
    }
}

#[test]
fn the_event_stream_documents_one_event_whose_data_is_a_task() {
    let doc = crate::openapi::full();
    let event =
        &doc["paths"]["/tasks/{id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]["schema"];
    assert_eq!(event["properties"]["event"]["enum"], json!(["status", "progress"]));
    assert_eq!(event["properties"]["data"]["contentMediaType"], "application/json");
    assert_eq!(event["properties"]["data"]["contentSchema"]["$ref"], "#/components/schemas/Task");
}

#[tokio::test]
async fn invalid_queue_and_dead_letter_parameters_are_400_naming_them() {
    for (path, field) in [
        ("/queues?minutes=0", "minutes"),
        ("/queues?minutes=61", "minutes"),
        ("/queues?minutes=soon", "minutes"),
        ("/queues?window=5", "minutes"),
        ("/dead-letters?limit=0", "limit"),
        ("/dead-letters?limit=201", "limit"),
        ("/dead-letters?partition=-1", "partition"),
        ("/dead-letters?before=-5", "before"),
        ("/dead-letters?before=x", "before"),
        ("/dead-letters/x/0", "partition"),
        ("/dead-letters/-1/0", "partition"),
        ("/dead-letters/0/-1", "offset"),
        ("/dead-letters/0/9999999999999999999999", "offset"),
    ] {
        let a = call(get(path)).await;
        assert_eq!(problem(&a), (400, field), "{path}: {:?}", a.body);
    }
    let a = call(post("/dead-letters/0/x/replay", Some("application/json"), "{}")).await;
    assert_eq!(problem(&a), (400, "offset"), "{:?}", a.body);
}

#[tokio::test]
async fn the_dashboard_is_served_under_a_strict_content_security_policy() {
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let resp = app().oneshot(get(path)).await.expect("router answers");
        assert_eq!(resp.status(), 200, "{path}");
        let h = |n: header::HeaderName| resp.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        assert!(h(header::CONTENT_TYPE).unwrap().starts_with(kind), "{path}");
        assert_eq!(h(header::CONTENT_SECURITY_POLICY).as_deref(), Some(crate::ui::CSP), "{path}");
        assert_eq!(h(header::X_CONTENT_TYPE_OPTIONS).as_deref(), Some("nosniff"), "{path}");
    }
    for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
        assert!(crate::ui::CSP.contains(directive), "{directive}");
    }
    assert!(!crate::ui::CSP.contains("unsafe"), "no unsafe-inline or unsafe-eval");
    let resp = app().oneshot(get("/ui/")).await.expect("router answers");
    assert_eq!((resp.status().as_u16(), resp.headers()[header::LOCATION].to_str().unwrap()), (308, "/ui"));
    let a = call(get("/ui/missing.js")).await;
    assert_eq!(problem(&a), (404, ""), "{:?}", a.body);
}

#[test]
fn the_kafka_read_bounds_are_flags_checked_at_start() {
    let parse = |args: &[&str]| {
        let base = ["yadtq-gateway", "--database-url", "postgres://127.0.0.1:1/x", "--kafka-bootstrap", "127.0.0.1:1"];
        Cli::try_parse_from([&base[..], args].concat()).expect("parses").cfg
    };
    let defaults = parse(&[]).inspect;
    assert_eq!(defaults.dead_letter_preview_bytes, 4096);
    assert_eq!(defaults.dead_letter_read_timeout, std::time::Duration::from_secs(5));
    assert_eq!(defaults.lag_read_timeout, std::time::Duration::from_secs(2));
    assert!(defaults.validate().is_ok());
    // Refused at parsing (not a duration) or at the start's check (zero),
    // naming the flag either way.
    let base = ["yadtq-gateway", "--database-url", "postgres://127.0.0.1:1/x", "--kafka-bootstrap", "127.0.0.1:1"];
    for flag in ["--dead-letter-read-timeout", "--lag-read-timeout"] {
        for bad in ["0", "-1", "inf", "soon"] {
            let arg = format!("{flag}={bad}");
            let e = match Cli::try_parse_from([&base[..], &[arg.as_str()]].concat()) {
                Err(e) => e.to_string(),
                Ok(cli) => cli.cfg.inspect.validate().expect_err("refused").to_string(),
            };
            assert!(e.contains(flag), "{flag} {bad}: {e}");
        }
    }
    assert_eq!(parse(&["--lag-read-timeout", "500ms"]).inspect.lag_read_timeout, std::time::Duration::from_millis(500));
    assert_eq!(parse(&["--dead-letter-preview-bytes", "10"]).inspect.dead_letter_preview_bytes, 10);
}

#[tokio::test]
async fn an_audit_cursor_below_1_is_400_naming_it() {
    for cursor in ["0", "-5"] {
        let a = call(get(&format!("/admin/audit?cursor={cursor}"))).await;
        assert_eq!(problem(&a), (400, "cursor"), "{cursor}: {:?}", a.body);
    }
}
